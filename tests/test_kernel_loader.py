"""Choosing the kernel backend: CPython with the GIL only, quiet when the extension is not built,
loud when it is built but broken, and the C layout checked against kernels/layout.py."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
import types

import pytest

from palyra_journal import kernels
from palyra_journal.errors import BackendUnavailableError
from palyra_journal.kernels import layout


def test_interpreter_refusal_accepts_this_cpython():
    assert sys.implementation.name == "cpython"
    assert kernels.interpreter_refusal() is None


def test_interpreter_refusal_names_other_implementations(monkeypatch):
    monkeypatch.setattr(sys, "implementation", types.SimpleNamespace(name="pypy"))
    reason = kernels.interpreter_refusal()
    assert reason is not None and "pypy" in reason and "CPython" in reason
    with pytest.raises(BackendUnavailableError, match="pypy"):
        kernels.set_backend("native")
    assert "pypy" in kernels.native_unavailable_reason()


def test_interpreter_refusal_names_a_free_threaded_build(monkeypatch):
    monkeypatch.setattr(kernels.sysconfig, "get_config_var",
                        lambda name: 1 if name == "Py_GIL_DISABLED" else None)
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert "free-threaded" in kernels.interpreter_refusal()
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True)  # the GIL was re-enabled
    assert kernels.interpreter_refusal() is None


def _fake_import(monkeypatch, exc: BaseException):
    """Make ``from . import native`` in the kernel layer raise ``exc``."""
    real = builtins.__import__

    def fake(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and fromlist and "native" in fromlist and globals \
                and globals.get("__name__") == "palyra_journal.kernels":
            raise exc
        return real(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.setattr(kernels, "_native_error", None)


def test_an_extension_that_is_not_built_is_quiet(monkeypatch):
    _fake_import(monkeypatch, ModuleNotFoundError("No module named 'palyra_journal._native'",
                                                  name="palyra_journal._native"))
    with pytest.raises(BackendUnavailableError, match="not built"):
        kernels._load("native")
    assert kernels.native_load_error() is None


def test_a_missing_dependency_is_not_mistaken_for_an_unbuilt_extension(monkeypatch):
    _fake_import(monkeypatch, ModuleNotFoundError("No module named 'numpy'", name="numpy"))
    with pytest.raises(ModuleNotFoundError, match="numpy"):
        kernels._load("native")


def test_a_broken_extension_is_loud_and_shown_by_doctor(monkeypatch):
    _fake_import(monkeypatch, AttributeError("lib has no function 'pj_topk'"))
    with pytest.raises(BackendUnavailableError, match="pj_topk"):
        kernels._load("native")
    assert "AttributeError: lib has no function 'pj_topk'" in kernels.native_load_error()
    from palyra_journal.commands import doctor
    assert "pj_topk" in doctor.collect()["native_error"]
    monkeypatch.setenv("PALYRA_JOURNAL_BACKEND", "auto")
    monkeypatch.delenv("PALYRA_JOURNAL_REQUIRE_NATIVE", raising=False)  # CI sets it
    previous = kernels.backend_name()
    try:
        with pytest.warns(RuntimeWarning, match="pj_topk"):
            kernels._initial()
        assert kernels.backend_name() == "python"
        monkeypatch.setenv("PALYRA_JOURNAL_REQUIRE_NATIVE", "1")
        with pytest.raises(BackendUnavailableError, match="pj_topk"):
            kernels._initial()
    finally:
        monkeypatch.undo()
        kernels.set_backend(previous)


def test_a_fresh_interpreter_picks_native_without_warnings():
    code = ("import warnings; warnings.simplefilter('error'); "
            "from palyra_journal import kernels; print(kernels.backend_name())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "", "PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == ("native" if kernels.native_available() else "python")


# ------------------------------------------------------------------------------ layout
native = pytest.importorskip("palyra_journal.kernels.native")


def test_the_compiled_layout_matches_kernels_layout():
    native._check_layout()  # also ran at import


def test_a_chain_field_order_drift_is_caught(monkeypatch):
    real = native.chain_hashes

    def swapped(prev, rows):  # what a chain.c with kind and actor swapped would hash
        return real(prev, [r[:2] + (r[3], r[2]) + tuple(r[4:]) for r in rows])

    monkeypatch.setattr(native, "chain_hashes", swapped)
    with pytest.raises(native.LayoutMismatchError, match="field order"):
        native._check_layout()


def test_an_event_line_key_drift_is_caught(monkeypatch):
    real = native.event_lines

    def swapped(lines, **kw):  # a jcs.c that fills run_id's column from session_id and back
        cols = list(real(lines, **kw))
        i, j = layout.EVENT_LINE_KEYS.index("session_id"), layout.EVENT_LINE_KEYS.index("run_id")
        cols[i], cols[j] = cols[j], cols[i]
        return tuple(cols)

    monkeypatch.setattr(native, "event_lines", swapped)
    with pytest.raises(native.LayoutMismatchError, match="columns"):
        native._check_layout()


def test_the_pure_envelope_is_built_from_the_layout():
    from palyra_journal.kernels import pure_chain
    row = tuple(i if f in layout.CHAIN_INT_FIELDS else ("[]" if f == "payload_json" else f"v{i}")
                for i, f in enumerate(layout.CHAIN_FIELDS))
    env = json.loads(pure_chain.envelope_text(row))
    assert list(env) == sorted(layout.ENVELOPE_NAMES)
    assert env == {n: (json.loads(v) if n == "payload" else v)
                   for n, v in zip(layout.ENVELOPE_NAMES, row)}
    assert pure_chain._ENVELOPE.count("%") == len(layout.CHAIN_FIELDS)


def test_doctor_says_why_the_pure_backend_runs(monkeypatch, capsys):
    from palyra_journal.cli import main
    assert main(["doctor", "--json"]) == 0  # imports every module doctor needs
    capsys.readouterr()
    monkeypatch.setattr(sys, "implementation", types.SimpleNamespace(
        name="pypy", cache_tag=sys.implementation.cache_tag))
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["native_available"] is False and report["implementation"] == "pypy"
    assert "only CPython" in report["native_unavailable_reason"]
    assert main(["doctor"]) == 0
    assert "pure Python: native backend not used" in capsys.readouterr().out
