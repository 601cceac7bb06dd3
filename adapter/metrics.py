"""The adapter's Prometheus metrics, kept by `prometheus_client` in one registry per `Metrics`
(several adapters in one process, as in the tests, never share a sample) and exposed at
``/metrics`` in its exposition format. Every metric is listed in docs/operations.md.

The counters of `inc` keep the names they had before prometheus_client (``twiml_adapter_calls``,
``twiml_adapter_callbacks{status=...}``, ...; no ``_total`` suffix), so dashboards keep working:
they are exposed as untyped samples by `_NamedCounters`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

__all__ = ["PREFIX", "Metrics"]

PREFIX = "twiml_adapter_"

# Seconds: webhooks (a web app's answer) and post-processing (a WAV trimmed or copied).
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# Attempts one callback took before it was delivered or given up.
_ATTEMPT_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 12.0, 20.0)


class _NamedCounters(Collector):
    """The `inc` counters, each sample under its own name, with an optional ``status``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for (name, label), value in sorted(self.counts.items()):
            family = families.setdefault(name, Metric(PREFIX + name, name, "unknown"))
            family.add_sample(PREFIX + name, {"status": label} if label else {}, float(value))
        yield from families.values()


class Metrics:
    """One adapter's metrics: counters (`inc`), gauges read when scraped (`gauge`), and the
    histograms of webhook latency, recording post-processing and callback attempts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = _NamedCounters()
        self.registry.register(self._counters)
        self._gauges: dict[str, Gauge] = {}
        self.webhook_seconds = Histogram(
            PREFIX + "webhook_seconds",
            "Time of one webhook request (redirects included), by kind (twiml: a TwiML fetch; "
            "callback: a status callback) and outcome (ok, error)",
            ["kind", "outcome"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.postprocess_seconds = Histogram(
            PREFIX + "recording_postprocess_seconds",
            "Time of one recording's post-processing (the WAV made from the PBX's files), by "
            "kind (record: <Record>; call: a call recording)",
            ["kind"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.callback_attempts = Histogram(
            PREFIX + "callback_attempts",
            "Attempts a callback took until its outcome (delivered, failed)",
            ["outcome"], buckets=_ATTEMPT_BUCKETS, registry=self.registry)
        self.recordings_active = Gauge(
            PREFIX + "recordings_active", "Recordings being made now (<Record> and call "
            "recordings)", ["kind"], registry=self.registry)

    @property
    def counters(self) -> Counter[tuple[str, str]]:
        """The `inc` counts by (name, status)."""
        return self._counters.counts

    def inc(self, name: str, label: str = "") -> None:
        self._counters.counts[(name, label)] += 1

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """``twiml_adapter_<name>``, `read()` when scraped; a second call for a name replaces
        the first's `read`."""
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = Gauge(PREFIX + name, name.replace("_", " "), registry=self.registry)
            self._gauges[name] = gauge
        gauge.set_function(read)

    def time_webhook(self, kind: str, outcome: str, seconds: float) -> None:
        self.webhook_seconds.labels(kind=kind, outcome=outcome).observe(seconds)

    def time_postprocess(self, kind: str) -> AbstractContextManager[object]:
        """A ``with`` block timed into ``recording_postprocess_seconds``."""
        return self.postprocess_seconds.labels(kind=kind).time()

    def recording(self, kind: str) -> AbstractContextManager[object]:
        """A ``with`` block counted in ``recordings_active`` while it runs."""
        return self.recordings_active.labels(kind=kind).track_inprogress()

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type for a scrape whose ``Accept`` header is `accept`
        (prometheus_client's negotiation: its text format, or OpenMetrics when asked for)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
