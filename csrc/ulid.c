/* ULIDs in bulk (see ulid.h): one random read per batch, Crockford base32 by 5-bit groups. */
#define _DEFAULT_SOURCE
#include "ulid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char CROCKFORD[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Fill buf with n random bytes from the kernel; 0 or -1. */
static int random_bytes(unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    if (got == n) return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    close(fd);
    return got == n ? 0 : -1;
}

int pj_ulid_fill(char *out, size_t count, uint64_t now_ms) {
    if (count == 0) return 0;
    if (!out || count > SIZE_MAX / 26) return -1;
    enum { CHUNK = 4096 };
    unsigned char rnd[CHUNK * 10];
    uint64_t t = now_ms & 0xFFFFFFFFFFFFULL;
    char head[10];
    for (int i = 9; i >= 0; i--) { /* 48 bits as 10 characters: the top 2 bits are zero */
        head[i] = CROCKFORD[t & 31];
        t >>= 5;
    }
    for (size_t done = 0; done < count;) {
        size_t m = count - done < CHUNK ? count - done : CHUNK;
        if (random_bytes(rnd, m * 10)) return -1;
        for (size_t j = 0; j < m; j++) {
            char *u = out + (done + j) * 26;
            const unsigned char *r = rnd + j * 10;
            memcpy(u, head, 10);
            /* 80 bits = 16 characters of 5 bits: two 40-bit halves */
            uint64_t hi = ((uint64_t)r[0] << 32) | ((uint64_t)r[1] << 24) | ((uint64_t)r[2] << 16) |
                          ((uint64_t)r[3] << 8) | r[4];
            uint64_t lo = ((uint64_t)r[5] << 32) | ((uint64_t)r[6] << 24) | ((uint64_t)r[7] << 16) |
                          ((uint64_t)r[8] << 8) | r[9];
            for (int k = 7; k >= 0; k--) {
                u[10 + k] = CROCKFORD[hi & 31];
                hi >>= 5;
                u[18 + k] = CROCKFORD[lo & 31];
                lo >>= 5;
            }
        }
        done += m;
    }
    return 0;
}
