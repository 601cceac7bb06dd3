"""``python -m bench [--quick] [--only NAME] [--out FILE]``: run the registered benchmarks and
rewrite docs/performance.md (or FILE) with their rows.

A module that is absent on this checkout, or that fails, gets one row saying so (its traceback on
stderr), and the others still run: the report always has a section for every issue row.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path

from bench.registry import MODULES
from bench.report import ModuleResult, write_report

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def _run_one(name: str, quick: bool) -> ModuleResult:
    started = time.monotonic()
    if importlib.util.find_spec(name) is None:
        return ModuleResult(name, [], "not on this checkout", 0.0)
    try:
        module = importlib.import_module(name)
        rows = list(module.run(quick))
    except Exception as exc:  # one benchmark's failure must not cost the others
        traceback.print_exc()
        return ModuleResult(name, [], f"failed: {type(exc).__name__}: {exc}",
                            time.monotonic() - started)
    return ModuleResult(name, rows, None, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the CI smoke run)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this module (bench.NAME or NAME; repeatable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report to write")
    args = parser.parse_args(argv)
    wanted = {n if n.startswith("bench.") else f"bench.{n}" for n in args.only}
    unknown = wanted - set(MODULES)
    if unknown:
        parser.error(f"not a registered benchmark: {', '.join(sorted(unknown))}")
    results: list[ModuleResult] = []
    for name in MODULES:
        if wanted and name not in wanted:
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        result = _run_one(name, args.quick)
        print(f"bench: {name}: {len(result.rows)} rows in {result.seconds:.1f} s"
              + (f" ({result.problem})" if result.problem else ""), file=sys.stderr, flush=True)
        results.append(result)
    write_report(args.out, results, quick=args.quick)
    print(f"bench: wrote {args.out}", file=sys.stderr)
    return 1 if any(r.problem and r.problem.startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
