/* JSON string writing as RFC 8785 wants it, and the UTF-8 validation it relies on.
 *
 * Shared by the canonical JSON kernel (jcs.c) and the hash-chain envelope builder: both must
 * write strings byte for byte the same way. Escaping is minimal: \" \\ \b \f \n \r \t, other
 * control characters as \u00xx (lowercase hex); everything else, '/' and non-ASCII included,
 * is copied as UTF-8. */
#ifndef PJ_JSTR_H
#define PJ_JSTR_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append `s` (n bytes of UTF-8) to `out` as a quoted JSON string. Returns 0, or -1 when `s` is
 * not valid UTF-8 (overlong forms, surrogates U+D800..U+DFFF and values above U+10FFFF are
 * invalid) or the buffer could not grow; on -1 the buffer length is restored. */
int pj_jstr_write(pj_buf *out, const char *s, size_t n);

/* Same as pj_jstr_write for bytes already known to be valid UTF-8 (skips the validation). */
void pj_jstr_write_valid(pj_buf *out, const char *s, size_t n);

/* Length of the longest valid UTF-8 prefix of `s`: n when all of it is valid, else the offset of
 * the first byte of the first invalid sequence. */
size_t pj_utf8_valid_prefix(const char *s, size_t n);

/* Decode the code point of the valid UTF-8 sequence at s[0..n) (n >= 1); *len gets its length. */
uint32_t pj_utf8_decode(const unsigned char *s, size_t n, size_t *len);

#endif
