"""The cffi builder of the native kernels (``palyra_journal._native``), used by setup.py.

Every ``csrc/NAME.c`` is compiled into the one extension module. Every ``csrc/NAME.cdef`` holds
the declarations Python sees (cffi's subset of C) and is paired with ``csrc/NAME.h``, which the
generated module includes. Adding a kernel is adding files; this builder does not change.

Flags: C11, ``-O3 -Wall -Wextra -Werror``, never ``-march=native`` (wide instructions are chosen
per function with ``__attribute__((target(...)))`` and dispatched at run time).

ABI: the module makes no stable-ABI (abi3) claim. ``csrc/jcs.c`` walks Python values with the full
CPython API, so the extension is built for the running interpreter (``.cpython-3XY-...so``), and
cffi's own wrapper is told not to define ``Py_LIMITED_API`` either, so the whole module uses one
API. The reasons and the measurements are in docs/native.md.
``PALYRA_JOURNAL_CFLAGS`` appends flags to compile and link (e.g. the sanitizer build).
"""

from __future__ import annotations

import glob
import os
import shlex

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(_HERE))
CSRC = os.path.join(ROOT, "csrc")


def _rel(path: str) -> str:
    """Source paths relative to the working directory, as setuptools wants them."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


CDEFS = sorted(glob.glob(os.path.join(CSRC, "*.cdef")))
SOURCES = sorted(glob.glob(os.path.join(CSRC, "*.c")))
HEADERS = [os.path.splitext(os.path.basename(p))[0] + ".h" for p in CDEFS]

# The generated wrapper is cffi's code, not ours: silence the warnings it is known to raise so that
# -Werror keeps applying, in full, to every file of csrc/.
_PREAMBLE = """
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#endif
"""

EXTRA_FLAGS = shlex.split(os.environ.get("PALYRA_JOURNAL_CFLAGS", ""))
COMPILE_ARGS = ["-std=c11", "-O3", "-Wall", "-Wextra", "-Werror", "-pthread",
                "-fno-strict-aliasing"] + EXTRA_FLAGS
LINK_ARGS = ["-pthread"] + EXTRA_FLAGS

ffibuilder = FFI()
ffibuilder.cdef("\n".join(_read(p) for p in CDEFS))
ffibuilder.set_source(
    "palyra_journal._native",
    _PREAMBLE + "\n".join(f'#include "{h}"' for h in HEADERS),
    sources=[_rel(p) for p in SOURCES],
    include_dirs=[_rel(CSRC)],
    define_macros=[("_CFFI_NO_LIMITED_API", None)],
    py_limited_api=False,
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
)

if __name__ == "__main__":  # python palyra_journal/kernels/_build.py: build in place for development
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "build", "cffi"), verbose=True)
