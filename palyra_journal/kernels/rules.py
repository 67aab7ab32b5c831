"""The redaction rules (rules v2 of docs/canonical-json.md) as plain data, shared by both backends.

Kept apart from the walkers so that the pure and the native backend read the very same lists: the
native backend hands these tuples to C (``native_jcs._c_rules``), the pure one matches them in
Python (``pure_jcs``). Changing a list here changes both, and is a new :data:`RULES_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

#: The value that replaces anything redacted.
REDACTED = "<redacted>"

#: The version of the built-in rules below. A journal records which version wrote each seq range
#: (``journal_meta``), since stored payloads keep the redaction they were written with.
RULES_VERSION = 2

# ------------------------------------------------------------------------- sensitive keys
# A key is split into words (at every character that is not an ASCII letter or digit, and between
# a lowercase letter or digit and a following uppercase letter), each ASCII-lowercased.

#: A word that ends with one of these makes the key sensitive (``csrftoken``, ``dbpassword``).
KEY_WORD_ENDINGS: tuple[str, ...] = (
    "secret", "token", "password", "passwd", "passphrase", "apikey", "credential", "credentials",
    "privatekey",
)
#: A word equal to one of these makes the key sensitive (``pin`` but not ``spin``).
KEY_WORDS: tuple[str, ...] = ("pin", "pincode", "otp", "cookie", "authorization", "signature", "proof")
#: Two consecutive words equal to one of these pairs make the key sensitive (``x-api-key``).
KEY_WORD_PAIRS: tuple[tuple[str, str], ...] = (
    ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("session", "id"),
)
#: A matching word followed by one of these keeps a *number* value (``token_count: 5``).
COUNTING_WORDS: tuple[str, ...] = (
    "count", "counts", "usage", "limit", "limits", "budget", "total", "used", "remaining", "len",
    "length", "size",
)

# ----------------------------------------------------------------------- secrets in text
# Markers are matched ASCII-case-insensitively, anywhere in a string value.

#: Everything after one of these, up to the end of the line or a quote, becomes " <redacted>".
HEADER_MARKERS: tuple[str, ...] = ("authorization:", "proxy-authorization:", "cookie:", "set-cookie:")
#: One of these, optional spaces, ``=`` or ``:``, optional spaces: the value after it is masked.
ASSIGNMENT_MARKERS: tuple[str, ...] = (
    "api_key", "apikey", "secret", "token", "access_token", "refresh_token", "password", "passwd",
    "client_secret",
)
#: One of these followed by a credential-looking run (>= 8 characters, one a digit): run masked.
SCHEME_MARKERS: tuple[str, ...] = ("bearer ", "basic ")
#: Minimum length of the credential run after a scheme marker.
SCHEME_MIN_RUN = 8
#: A word made of one of these and >= 16 letters, digits, ``-`` or ``_`` is masked whole.
TOKEN_PREFIXES: tuple[str, ...] = ("sk-", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-")
#: Minimum length of what follows a token prefix.
TOKEN_PREFIX_MIN_RUN = 16
#: ``AKIA`` followed by exactly this many uppercase letters or digits (an AWS key id) is masked.
AWS_KEY_PREFIX = "AKIA"
AWS_KEY_RUN = 16


def match_order(items: Iterable[str]) -> tuple[str, ...]:
    """The order in which markers are tried at one position: longest first (both backends)."""
    return tuple(sorted(items, key=lambda i: (-len(i), i)))


def _ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


@dataclass(frozen=True)
class RedactionRules:
    """Extra key fragments and value markers on top of the built-in rules.

    Both are matched ASCII-case-insensitively as substrings (as in rules v1, so existing
    configurations keep redacting what they did): a key containing an extra fragment is sensitive
    whatever its value; a string value containing an extra marker is replaced whole.
    """

    extra_key_fragments: tuple[str, ...] = ()
    extra_value_markers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("extra_key_fragments", "extra_value_markers"):
            raw = getattr(self, name)
            if isinstance(raw, str):
                raw = (raw,)
            items = tuple(raw)
            for item in items:
                if not isinstance(item, str) or not item:
                    raise ValueError(f"{name} must hold non-empty strings, got {item!r}")
            object.__setattr__(self, name, tuple(_ascii_lower(i) for i in items))

    @property
    def version(self) -> str:
        """The rules version recorded in the journal: ``"2"``, or ``"2+custom"`` with extras."""
        extra = self.extra_key_fragments or self.extra_value_markers
        return f"{RULES_VERSION}+custom" if extra else str(RULES_VERSION)

    @classmethod
    def coerce(cls, rules: "RedactionRules | None | Iterable[str]") -> "RedactionRules":
        if rules is None:
            return DEFAULT_RULES
        if isinstance(rules, RedactionRules):
            return rules
        raise TypeError(f"redaction must be a RedactionRules, got {type(rules).__name__}")


DEFAULT_RULES = RedactionRules()
