"""Runs the atheris harness over the native JSON parser for a fixed number of iterations.

``PALYRA_JOURNAL_FUZZ_RUNS`` (default 10 000) sets the iteration count, and
``PALYRA_JOURNAL_FUZZ_SECONDS`` a time budget instead, for long runs on demand. The harness runs in
a subprocess because libFuzzer exits the process when it is done; the seed corpus is the RFC 8785
vectors plus a few hostile seeds, copied so that the fuzzer's additions stay out of the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SEEDS = [
    b'{"token":"x","nested":{"password":"1"},"safe":"ok"}',
    b'{"pin":1,"pinCode":2,"pincode":3,"pinpoint_id":"r1","pinpointId":"r2"}',
    b'{"details":"{\\"cookie\\":\\"sid=1\\",\\"a\\":1}"}',
    b'{"note":"Authorization: Bearer abc","url":"https://u:p@h/x","k":"sk-123"}',
    b'[1e21,1e-7,-0,0.1,9007199254740991,-9007199254740991,5e-324,1.7976931348623157e308]',
    b'{"\\u00e9":1,"e\\u0301":2,"\\ud83d\\ude00":3,"\\u20ac":4,"\\r":5}',
    b'"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\/"',
    b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
]


def _corpus(tmp_path: Path, test_vectors: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    inputs = sorted((test_vectors / "jcs" / "input").glob("*.json"))
    bodies = [p.read_bytes() for p in inputs] + SEEDS
    n = 0
    for body in bodies:
        for mode in (0, 1, 2):
            (corpus / f"seed{n:04d}").write_bytes(bytes([mode]) + body)
            n += 1
    (corpus / "number").write_bytes(b"\x03" + (0.1).hex().encode()[:8])
    return corpus


def test_atheris_native_json_parser(tmp_path, test_vectors, capsys, native_backend):
    corpus = _corpus(tmp_path, test_vectors)
    args = [sys.executable, str(HERE / "native_json_target.py"), "-seed=8808",
            "-max_len=4096", "-timeout=20", "-rss_limit_mb=4096", f"-dict={HERE / 'json.dict'}",
            "-print_final_stats=1"]
    seconds = os.environ.get("PALYRA_JOURNAL_FUZZ_SECONDS")
    if seconds:
        args.append(f"-max_total_time={int(seconds)}")
    else:
        args.append(f"-runs={int(os.environ.get('PALYRA_JOURNAL_FUZZ_RUNS', '10000'))}")
    env = dict(os.environ, PALYRA_JOURNAL_BACKEND="native",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(args + [str(corpus)], capture_output=True, text=True, env=env,
                          timeout=3600)
    tail = proc.stderr[-4000:]
    assert proc.returncode == 0, f"fuzzer found a crash or a difference:\n{tail}"
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    done = re.findall(r"Done (\d+) runs in (\d+) second", proc.stderr)
    assert runs or done, tail
    with capsys.disabled():
        execs = runs[-1] if runs else done[-1][0]
        print(f"\n[fuzz/atheris] {execs} inputs through the native JSON parser, "
              f"corpus {len(list(corpus.iterdir()))} files, no crash, no backend difference")
