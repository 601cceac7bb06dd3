"""A few counters and gauges, exposed in Prometheus' text format at ``/metrics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.counters: Counter[tuple[str, str]] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, label: str = "") -> None:
        self.counters[(name, label)] += 1

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self.gauges[name] = read

    def render(self) -> str:
        lines: list[str] = []
        for (name, label), value in sorted(self.counters.items()):
            labels = f'{{status="{label}"}}' if label else ""
            lines.append(f"twiml_adapter_{name}{labels} {value}")
        for name, read in sorted(self.gauges.items()):
            lines.append(f"twiml_adapter_{name} {read()}")
        return "\n".join(lines) + "\n"
