/* ULIDs, monotonic within a millisecond: 48-bit Unix-ms time + 80 random bits, Crockford base32,
 * 26 characters each (the ULID spec's monotonic variant; kernels/pure_ulid.py is the reference).
 *
 * The caller keeps, per millisecond, the last ULID it made (16 bytes, big-endian; all zero for
 * none) and passes it in; it is updated to the last ULID written. When `last` belongs to the
 * batch's millisecond (its time is now_ms, or now_ms + 1 after a carry, see below) the batch
 * continues from last + 1; otherwise the random part is fresh, 10 bytes from the kernel's CSPRNG
 * (getrandom, else /dev/urandom), and the batch counts up from there. When the random part
 * overflows, the + 1 carries into the time (the ULID reads one millisecond later), so the ids stay
 * strictly increasing. Nothing here holds state, so there is nothing to share between threads or
 * reseed after fork: the caller serialises calls and forgets its state in a forked child. */
#ifndef PJ_ULID_H
#define PJ_ULID_H

#include <stddef.h>
#include <stdint.h>

#define PJ_ULID_OK 0
#define PJ_ULID_ERR_RANDOM (-1)    /* the random source failed */
#define PJ_ULID_ERR_EXHAUSTED (-2) /* the batch would pass the largest ULID (time 2^48 - 1) */
#define PJ_ULID_ERR_ARGS (-3)      /* NULL output or state, or 26 * count overflows */

/* Write `count` ULIDs for time `now_ms` (low 48 bits) into out[0 .. 26*count) following last[16]
 * (updated). On an error nothing usable is written and `last` is unchanged. */
int pj_ulid_next(char *out, size_t count, uint64_t now_ms, uint8_t last[16]);

/* pj_ulid_next with the state passed by value (two 64-bit halves, big-endian order) and returned
 * in the output: out[0 .. 26*count) gets the ULIDs and out[26*count .. 26*count + 16) the new last
 * one (big-endian), so a call crosses the boundary with one buffer (out holds 26*count + 16). */
int pj_ulid_fill(char *out, size_t count, uint64_t now_ms, uint64_t last_hi, uint64_t last_lo);

#endif
