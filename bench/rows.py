"""One row of docs/performance.md: what was measured, against which limit, and the verdict.

Every benchmark module in bench/ exposes ``run(quick: bool) -> list[Row]``; ``quick`` is the
smoke size CI uses to keep the benchmark working, the full size is what ``make bench`` reports.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    """A ratio measured in one run: the median of interleaved samples, with their range."""

    median: float
    low: float
    high: float
    samples: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Ratio:
        if not samples:
            raise ValueError("a ratio needs at least one sample")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}–{self.high:.2f}, n={self.samples})"


@dataclass(frozen=True)
class Row:
    """One line of the performance table."""

    measured: str  # what was measured, e.g. "AMI recording events → queued callbacks"
    against: str  # the limit or peer it is held against, e.g. "panoramisk parsing alone"
    figure: str  # the adapter's own figure, with units, e.g. "68,000 events/s"
    ratio: Ratio | None  # adapter / limit (or limit / adapter: say which in `target`)
    target: str  # e.g. "≥ 0.9"
    met: bool  # whether the target was met in this run
    note: str = ""  # the measured cause when a target is missed, and what would fix it
