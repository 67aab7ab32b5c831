"""The redaction rules of JOURNAL.md as plain data, shared by both kernel backends.

Kept apart from the walkers so that the pure and the native backend read the very same lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

#: The value that replaces anything redacted.
REDACTED = "<redacted>"

#: A key is sensitive when, ASCII-lowercased, it contains one of these.
KEY_FRAGMENTS: tuple[str, ...] = (
    "secret", "token", "password", "passwd", "api_key", "apikey", "authorization",
    "cookie", "credential", "private_key", "proof", "signature",
)

#: A key is sensitive when one of its tokens (see JOURNAL.md) equals one of these.
KEY_TOKENS: tuple[str, ...] = ("pin", "pincode")

#: A string value is a secret when, ASCII-lowercased, it contains one of these.
VALUE_MARKERS: tuple[str, ...] = (
    "bearer ", "authorization:", "api_key=", "apikey=", "secret=", "token=", "password=",
    "refresh_token", "set-cookie:", "cookie:",
)

#: A string value is a secret when, ASCII-lowercased, it starts with one of these.
VALUE_PREFIXES: tuple[str, ...] = ("sk-",)


def _ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


@dataclass(frozen=True)
class RedactionRules:
    """Extra key fragments and value markers on top of the built-in rules.

    Both lists are matched ASCII-case-insensitively, as substrings, exactly like the built-in ones.
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
    def key_fragments(self) -> tuple[str, ...]:
        return KEY_FRAGMENTS + self.extra_key_fragments

    @property
    def value_markers(self) -> tuple[str, ...]:
        return VALUE_MARKERS + self.extra_value_markers

    @classmethod
    def coerce(cls, rules: "RedactionRules | None | Iterable[str]") -> "RedactionRules":
        if rules is None:
            return DEFAULT_RULES
        if isinstance(rules, RedactionRules):
            return rules
        raise TypeError(f"redaction must be a RedactionRules, got {type(rules).__name__}")


DEFAULT_RULES = RedactionRules()
