/* Shortest round-trip formatting of doubles, written as ECMAScript's Number.prototype.toString.
 *
 * The decimal digits come from the Schubfach algorithm (R. Giulietti, "The Schubfach way to
 * render doubles", 2020): the shortest decimal in the rounding interval of the double, the one
 * closest to it on a tie of lengths; integer arithmetic only (a 64x128-bit product per bound and
 * a generated table of 617 multipliers, csrc/dtoa_table.h), so no locale, no allocation, no
 * shared state. The layout (plain, fixed or exponent form) is ECMAScript's, as RFC 8785 requires:
 * see docs/canonical-json.md. */
#ifndef PJ_DTOA_H
#define PJ_DTOA_H

#include <stddef.h>

/* Minimum size of the buffer pj_format_double writes into. */
#define PJ_DOUBLE_BUF 32

/* ECMAScript Number.prototype.toString of a finite double into buf (>= PJ_DOUBLE_BUF bytes, not
 * NUL-terminated); returns the length. -0 is written "0". */
size_t pj_format_double(double x, char *buf);

/* strtod in the "C" locale (created once, thread-safe): the double nearest to the decimal s. */
double pj_strtod_c(const char *s);

#endif
