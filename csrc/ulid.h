/* ULIDs in bulk: 48-bit Unix-ms time + 80 random bits, Crockford base32, 26 characters each.
 *
 * The random bits come from the kernel (getrandom, else /dev/urandom) in one read per call, so
 * there is no generator state to share between threads or to reseed after fork. */
#ifndef PJ_ULID_H
#define PJ_ULID_H

#include <stddef.h>
#include <stdint.h>

/* Write `count` ULIDs for time `now_ms` (low 48 bits) into out[0 .. 26*count). Returns 0, or -1
 * when the random source failed (nothing usable was written) or the size overflows. */
int pj_ulid_fill(char *out, size_t count, uint64_t now_ms);

#endif
