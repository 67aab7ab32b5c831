"""Benchmark-wide setup. benchmarks/README.md: some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE,
which slow a current numpy; the benchmark process unsets both before numpy loads, so that the numpy
peer runs its best kernel (the vector benchmark records which one ran). Tests leave them alone."""

import os
import tempfile
from pathlib import Path

import pytest

for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="module")
def workdir():
    """A scratch directory per benchmark module, removed after it."""
    with tempfile.TemporaryDirectory(prefix="pj-bench-") as d:
        yield Path(d)
