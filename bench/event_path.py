"""Row 1: the event path against raw parsing, AMI and ESL (`bench.event_clients` has the
variants; `bench.streams` the recorded shapes; `bench.feeder` the loopback PBX, its own process).

(a) panoramisk / greenswitch alone parsing the stream, (b) our own framing alone, (c) the adapter
turning the stream into recording state changes and queued callbacks. Each run is a new child
process (its peak RSS is its own), the three interleaved run by run; the ratios are per run.
The ESL path's memory is also measured on a 200,000-event burst (full mode). The short ESL runs
are 5,000 events (a child's start-up, not the events, is most of their time) to keep the module
in its time budget with the burst.
"""

from __future__ import annotations

from bench.measure import ChildResult, in_child, runs_for
from bench.rows import Ratio, Row

TARGET = 0.9
BURST = 200_000
BOUND_MIB = 256.0  # "bounded": well under greenswitch's 2.9 GiB for the same burst

CAUSES = {
    "ami": "the adapter's framing, Message building and dispatch were made cheaper on this "
           "branch (see ami_frames.parse_frame); what remains is panoramisk's action "
           "bookkeeping per message (`handle_message`) and the handlers themselves",
    "esl": "measured: the gevent reader's framing and the two threads taking turns on the "
           "GIL during a burst (headers are looked up in the block's text only when read, "
           "`protocol.EslHeaders`; the cross-thread posts share one FIFO with one wake-up per "
           "burst, `GeventBridge.post`). What would go further: read the call sockets in "
           "asyncio instead of a gevent thread (perf-limits note 3)",
}

_CHILD = "import sys\nfrom bench.event_clients import main\nmain(sys.argv[1:])\n"


def _rate(result: ChildResult) -> float:
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    _tag, events, seconds = line.split()
    return int(events) / float(seconds)


def _peak_pending(result: ChildResult) -> int:
    line = next(x for x in result.stdout.splitlines() if x.startswith("PEAK_PENDING "))
    return int(line.split()[1])


def _pbx_rows(pbx: str, peer: str, events: int, runs: int) -> tuple[list[Row], dict[str, float]]:
    results: dict[str, list[ChildResult]] = {"a": [], "b": [], "c": []}
    order = ["a", "b", "c"]
    for i in range(runs):
        for v in order if i % 2 == 0 else reversed(order):
            results[v].append(in_child(_CHILD, f"{pbx}-{v}", str(events)))
    rates = {v: [_rate(r) for r in rs] for v, rs in results.items()}
    peaks = {v: max(r.peak_rss_mib for r in rs) for v, rs in results.items()}

    def med(v: str) -> float:
        return sorted(rates[v])[len(rates[v]) // 2]

    c_over_a = Ratio.of([c / a for c, a in zip(rates["c"], rates["a"], strict=True)])
    b_over_a = Ratio.of([b / a for b, a in zip(rates["b"], rates["a"], strict=True)])
    label = "AMI" if pbx == "ami" else "ESL"
    rows = [
        Row(measured=f"{label}: our framing alone, {events:,} events per run",
            against=f"{peer} alone ({med('a'):,.0f} events/s, peak {peaks['a']:.0f} MiB)",
            figure=f"{med('b'):,.0f} events/s, peak {peaks['b']:.0f} MiB",
            ratio=b_over_a, target="", met=True),
        Row(measured=f"{label}: the adapter, events → recording state changes → queued "
                     f"callbacks, {events:,} events per run",
            against=f"{peer} alone ({med('a'):,.0f} events/s)",
            figure=f"{med('c'):,.0f} events/s, peak {peaks['c']:.0f} MiB",
            ratio=c_over_a, target=f"≥ {TARGET}", met=c_over_a.median >= TARGET,
            note="" if c_over_a.median >= TARGET else CAUSES[pbx]),
    ]
    return rows, {"c_peak": peaks["c"], "a_peak": peaks["a"]}


def run(quick: bool) -> list[Row]:
    runs = runs_for(quick)
    ami_events, esl_events, burst = (2_000, 1_000, 4_000) if quick else (100_000, 5_000, BURST)
    rows, _ = _pbx_rows("ami", "panoramisk 1.4 `Manager`", ami_events, runs)
    esl_rows, esl_peaks = _pbx_rows("esl", "greenswitch 0.0.19 `InboundESL`", esl_events, runs)
    rows += esl_rows
    big = in_child(_CHILD, "esl-c", str(burst))
    rows.append(Row(
        measured=f"ESL: the adapter's peak RSS on a {burst:,}-event burst "
                 f"(20 call sockets, written as fast as it reads)",
        against=f"the same path on {esl_events:,} events ({esl_peaks['c_peak']:.0f} MiB); "
                "greenswitch alone queued 2.9 GiB on 210,000 (perf-limits 2a')",
        figure=f"{big.peak_rss_mib:.0f} MiB, {_rate(big):,.0f} events/s; at most "
               f"{_peak_pending(big):,} events posted to the loop and not yet handled",
        ratio=Ratio.of([big.peak_rss_mib / esl_peaks["c_peak"]]),
        target=f"bounded (≤ {BOUND_MIB:.0f} MiB)",
        met=big.peak_rss_mib <= BOUND_MIB,
        note="ratio: peak at the burst / peak at the short run (1 = flat)",
    ))
    return rows
