"""One comparable outcome per kernel call, shared by the hypothesis tests and the atheris target.

A kernel call either returns ``(text, changed)`` or raises. The two backends must agree on both:
the same result, or the same exception class with the same message. Any exception that is not an
``InvalidPayloadError`` is a defect by itself (a crash path), whatever the other backend did.
"""

from __future__ import annotations

from typing import Any, Callable

from palyra_journal.errors import InvalidPayloadError


class UnexpectedError(AssertionError):
    """A kernel raised something other than InvalidPayloadError."""


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple:
    try:
        text, changed = fn(*args, **kwargs)
    except InvalidPayloadError as exc:
        return ("error", type(exc).__name__, str(exc))
    except Exception as exc:  # noqa: BLE001 - the finding
        raise UnexpectedError(f"{getattr(fn, '__module__', '')}.{fn.__name__} raised "
                              f"{type(exc).__name__}: {exc}") from exc
    return ("ok", text, bool(changed))


def agree(native_fn, pure_fn, *args: Any, **kwargs: Any) -> tuple:
    """Both outcomes, asserted equal; returns the reference's."""
    n = outcome(native_fn, *args, **kwargs)
    p = outcome(pure_fn, *args, **kwargs)
    if n != p:
        raise AssertionError(f"native and pure differ on {args!r:.300} {kwargs!r}:\n"
                             f"  native: {n!r:.500}\n  pure:   {p!r:.500}")
    return p
