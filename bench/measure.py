"""What every benchmark module shares: interleaved runs, same-run ratios, child-process peaks.

Our machines are noisy, so a figure is never compared with one from another run: the adapter and
its limit run alternately (A, B, A, B, …) and each run pair gives one ratio (`interleaved`).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.rows import Ratio

__all__ = ["ChildResult", "Samples", "in_child", "interleaved", "rate", "runs_for"]


def runs_for(quick: bool, full: int = 5) -> int:
    """Runs per measurement: ≥ 5 for the report, 2 for the smoke run."""
    return 2 if quick else full


@dataclass
class Samples:
    """Per-run figures of one method (e.g. events/s), in run order."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def ratio_to(self, other: Samples) -> Ratio:
        """self / other, run by run (both lists come from the same interleaved runs)."""
        return Ratio.of([a / b for a, b in zip(self.values, other.values, strict=True)])

    def ratio_of_inverse(self, other: Samples) -> Ratio:
        """other / self, run by run (for times: the limit's time over ours is a speed ratio)."""
        return Ratio.of([b / a for a, b in zip(self.values, other.values, strict=True)])


def interleaved(methods: dict[str, Callable[[], float]], runs: int) -> dict[str, Samples]:
    """Run every method once per round, `runs` rounds, alternating the order each round; each
    call returns its own figure (a rate or a time)."""
    out: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_ in range(runs):
        for name in names if round_ % 2 == 0 else reversed(names):
            out[name].append(methods[name]())
    return {name: Samples(values) for name, values in out.items()}


def rate(count: int, fn: Callable[[], object]) -> float:
    """Items per second of `fn()` handling `count` items (wall clock)."""
    started = time.perf_counter()
    fn()
    return count / (time.perf_counter() - started)


@dataclass(frozen=True)
class ChildResult:
    """One measured child process: its wall time, CPU time and peak RSS (of it and of ITS
    children, each the largest single process, as getrusage reports)."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    children_peak_rss_mib: float
    stdout: str


def in_child(code: str, *args: str, timeout: float = 600) -> ChildResult:
    """Run ``python -c code args…`` in a new interpreter; report what it cost. The child
    prints its own peak and its children's on the last line.

    Its own peak is the kernel's high-water mark of its memory (``VmHWM``), not its
    ``ru_maxrss``: Linux carries a process's maxrss across ``exec``, so a child spawned from
    a large parent (``python -m bench``, about 80 MiB) would report the parent's size. Its
    children's peak is RUSAGE_CHILDREN's maxrss (the largest one), at least the size of the
    child that spawned them."""
    wrapper = (
        code + "\nimport resource as _r\n"
        "with open('/proc/self/status') as _f:\n"
        "    _hwm = next(l.split()[1] for l in _f if l.startswith('VmHWM:'))\n"
        "print('PEAK', _hwm, _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          check=False, env=env, cwd=root, timeout=timeout)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    _tag, own, kids = lines[-1].split()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildResult(seconds, cpu, int(own) / 1024, int(kids) / 1024, "\n".join(lines[:-1]))


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def fmt_range(values: Sequence[float], unit: str, digits: int = 0) -> str:
    med = statistics.median(values)
    return f"{med:,.{digits}f} {unit} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
