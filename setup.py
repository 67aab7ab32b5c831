"""Only what pyproject.toml cannot say: the optional cffi extension.

If the C compiler is missing or fails, the install still succeeds with a warning and the package
runs on its pure-Python backend. ``PALYRA_JOURNAL_REQUIRE_NATIVE=1`` turns that into a hard error
(CI sets it, so that a broken C build can never pass unnoticed).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

REQUIRE_NATIVE = os.environ.get("PALYRA_JOURNAL_REQUIRE_NATIVE", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    def _warn(self, exc: BaseException) -> None:
        if REQUIRE_NATIVE:
            raise exc
        bar = "*" * 78
        sys.stderr.write(
            f"\n{bar}\nWARNING: palyra-journal's native extension could not be built:\n  {exc}\n"
            "The package is installed and will run on its pure-Python backend (slower).\n"
            "`palyra-journal doctor` shows the backend in use.\n" + bar + "\n\n"
        )

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back to pure Python
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)


setup(
    cffi_modules=["palyra_journal/kernels/_build.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
