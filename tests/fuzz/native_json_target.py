"""atheris target over the native JSON parser entry point (``pj_jcs_text`` via native_jcs).

Run by tests/fuzz/test_atheris.py for a fixed number of iterations; longer on demand:

    python tests/fuzz/native_json_target.py -runs=1000000 CORPUS_DIR
    python tests/fuzz/native_json_target.py -max_total_time=600 CORPUS_DIR

The first input byte picks the mode; the rest is the JSON text (or, for mode 3, a double).
Modes: 0 text with redaction, 1 text without redaction, 2 text without redaction checked against
the ``rfc8785`` oracle as well, 3 ECMAScript number formatting of the 8 bytes as a double.
A difference between the backends, or any exception other than InvalidPayloadError, is a crash.
The reference (pure) parser is instrumented, so its branches guide the mutations.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports(include=["palyra_journal"]):
    from palyra_journal.kernels import pure_jcs

from palyra_journal.kernels import native_jcs  # noqa: E402 - compiled: nothing to instrument

import rfc8785  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from outcomes import agree  # noqa: E402


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 3:
        if len(body) < 8:
            return
        x = struct.unpack("<d", body[:8])[0]
        if not math.isfinite(x):
            return
        agree(native_jcs.canonicalize, pure_jcs.canonicalize, [x], redact=False)
        return
    result = agree(native_jcs.canonicalize_text, pure_jcs.canonicalize_text, body,
                   redact=(mode == 0))
    # str input takes the same path as the UTF-8 bytes it encodes to
    if result[0] == "ok":
        text = body.decode("utf-8")
        again = agree(native_jcs.canonicalize_text, pure_jcs.canonicalize_text, text,
                      redact=(mode == 0))
        assert again == result, (body, again, result)
        if mode == 2:
            oracle = rfc8785.dumps(json.loads(text)).decode("utf-8")
            assert oracle == result[1], f"oracle differs on {body!r}: {oracle!r} vs {result[1]!r}"


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
