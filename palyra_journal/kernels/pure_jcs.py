"""PLACEHOLDER until the canonical JSON kernel lands (being written now)."""


def canonicalize(value, *, rules=None, redact=True):
    raise NotImplementedError("pure_jcs.canonicalize is being written")


def canonicalize_text(text, *, rules=None, redact=True):
    raise NotImplementedError("pure_jcs.canonicalize_text is being written")
