"""Writes docs/performance.md from the rows of one `python -m bench` run.

One table per issue row (measured, against, figure, ratio median (min–max, n), target, met ✓/✗,
note), then the facts of the machine and checkout the run was made on. Every ratio was measured
in the same run as its limit (interleaved), so only the ratios are comparable across runs.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.registry import ISSUE_ROW
from bench.rows import Row

__all__ = ["ModuleResult", "render", "write_report"]

_HEADER = ("measured", "against", "figure", "ratio median (min–max, n)", "target", "met", "note")


@dataclass(frozen=True)
class ModuleResult:
    """What one benchmark module gave: its rows, or why it gave none."""

    module: str
    rows: list[Row]
    problem: str | None  # "not on this checkout", "failed: …", or None
    seconds: float


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _ratio(row: Row) -> str:
    r = row.ratio
    if r is None:
        return "–"
    return f"{r.median:.2f} ({r.low:.2f}–{r.high:.2f}, n={r.samples})"


def _met(row: Row) -> str:
    if not row.target:
        return "–"  # reported, no target
    return "✓" if row.met else "✗"


def _table(rows: Sequence[Row]) -> list[str]:
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    for row in rows:
        cells = (row.measured, row.against, row.figure, _ratio(row), row.target or "–",
                 _met(row), row.note)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> list[str]:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPUs: {os.cpu_count()} ({_cpu_model()}); load average at the end: {load}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- commit: {_commit()}",
    ]


def render(results: Sequence[ModuleResult], *, quick: bool) -> str:
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m bench`; code in `bench/`, issue #13). Every ratio "
        "is the adapter against its limit **measured in the same run**, interleaved run by "
        "run: the median of the per-run ratios with their min–max and the number of runs. "
        "Absolute figures are this run's medians and move with the machine's load; compare "
        "ratios, not figures, across runs. The limits as first measured, with their methods, "
        "are in the project's perf-limits notes.",
        "",
    ]
    if quick:
        lines += ["**Quick (smoke) run: tiny sizes, the figures mean nothing.**", ""]
    for result in results:
        lines += [f"## {ISSUE_ROW.get(result.module, result.module)}", ""]
        if result.problem:
            lines += [f"Not measured: {result.problem} (`{result.module}`).", ""]
            continue
        lines += _table(result.rows)
        lines += ["", f"`{result.module}`, {result.seconds:.0f} s.", ""]
    lines += ["## Machine", "", *machine_facts(), ""]
    return "\n".join(lines)


def write_report(path: Path, results: Sequence[ModuleResult], *, quick: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render(results, quick=quick), encoding="utf-8")
    tmp.replace(path)
