/* Redaction rules v2 (docs/canonical-json.md): which keys are sensitive, and the secrets inside
 * text that are masked in place. The lists come from palyra_journal/kernels/rules.py (the one
 * place they are written); the pure-Python reference (kernels/pure_jcs.py) matches exactly the same
 * things, in the same order, so both backends write the same bytes.
 *
 * A rules object is immutable once built and may be shared by threads. */
#ifndef PJ_REDACT_H
#define PJ_REDACT_H

#include <stddef.h>

#include "buf.h"

typedef struct pj_jcs_rules pj_jcs_rules;

/* The lists, in this order, each a run of NUL-terminated ASCII-lowercase items. */
enum {
    PJ_RULES_KEY_ENDINGS,     /* a key word ending with one of these is sensitive */
    PJ_RULES_KEY_WORDS,       /* a key word equal to one of these is sensitive */
    PJ_RULES_KEY_PAIRS,       /* "first second": two consecutive key words */
    PJ_RULES_COUNTING,        /* a counting word after the match exempts a number value */
    PJ_RULES_HEADERS,         /* header markers: the rest of the line is masked */
    PJ_RULES_ASSIGNMENTS,     /* assignment markers: the value after = or : is masked */
    PJ_RULES_SCHEMES,         /* "bearer ", "basic ": a credential run after them is masked */
    PJ_RULES_TOKEN_PREFIXES,  /* a word made of one of these and a long run is masked */
    PJ_RULES_AWS_PREFIX,      /* one item, matched case-sensitively ("AKIA"; not lowercased) */
    PJ_RULES_EXTRA_KEYS,      /* user fragments: a key containing one is sensitive */
    PJ_RULES_EXTRA_MARKERS,   /* user markers: a string containing one is replaced whole */
    PJ_RULES_NLISTS
};

/* Rules from `blob` (the lists above, concatenated; list i is list_lens[i] bytes) and the run
 * lengths of the scheme, token-prefix and AWS rules. NULL when out of memory or malformed. */
pj_jcs_rules *pj_jcs_rules_new(const char *blob, size_t blob_len, const size_t *list_lens,
                               size_t nlists, int scheme_min_run, int prefix_min_run, int aws_run);
void pj_jcs_rules_free(pj_jcs_rules *rules);

/* A number unique to this rules object in this process (for caches keyed on the rules). */
unsigned long pj_rules_serial(const pj_jcs_rules *r);

/* Classes of a key. */
#define PJ_KEY_PLAIN 0
#define PJ_KEY_SENSITIVE 1
#define PJ_KEY_UNLESS_NUMBER 2 /* sensitive unless the value is a number */

/* The class of the key k[0..n) (UTF-8). */
int pj_key_class(const pj_jcs_rules *r, const unsigned char *k, size_t n);

/* The redacted form of the string value s[0..n) (valid UTF-8) into out (cleared first): returns
 * 0 when s is kept as it is (out untouched), 1 when out holds a different string. */
int pj_redact_text(const pj_jcs_rules *r, const unsigned char *s, size_t n, pj_buf *out);

#endif
