"""``palyra-journal bench``: the benchmark suite and its report (see benchmarks/README.md)."""

from __future__ import annotations

from . import add_command, emit


def register(sub) -> None:
    p = add_command(
        sub, "bench", "run the benchmark suite against its peers and write a report",
        run, description="Run every benchmarks/README.md workload against the raw-SQLite floor and the "
        "peer libraries in one run, and write report.md (tables of medians and ratios, targets met or "
        "not) plus PNG plots. Peers that are not installed are listed as missing; install them with "
        "`pip install 'palyra-journal[bench]'`.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, about 2 minutes on 2 cores (default)")
    g.add_argument("--full", action="store_true", help="the sizes of benchmarks/README.md, up to ~20 minutes")
    p.add_argument("--out", metavar="DIR", help="where to write report.md and the plots (default: a temp dir)")
    p.add_argument("-k", dest="select", metavar="EXPR", help="only benchmarks matching this pytest -k expression")


def run(args) -> int:
    from importlib.util import find_spec
    if find_spec("pytest") is None or find_spec("pytest_benchmark") is None:
        from ..errors import JournalError
        raise JournalError("the benchmark suite needs pytest and pytest-benchmark: "
                           "pip install 'palyra-journal[bench]'")
    try:
        from .. import benchsuite
    except ImportError:
        try:
            import benchmarks as benchsuite  # running from a source checkout
        except ImportError:
            from ..errors import JournalError
            raise JournalError("the benchmark suite is not installed with this copy of "
                               "palyra-journal") from None
    from importlib import import_module
    report = import_module(benchsuite.__name__ + ".report")
    argv = ["--full"] if args.full else ["--quick"]
    if args.out:
        argv += ["--out", args.out]
    if args.select:
        argv += ["-k", args.select]
    code = report.main(argv)
    emit(args, {"exit": code}, "")
    return code
