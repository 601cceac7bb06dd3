"""The measured causes of row 5's misses (bench/real_pbx_load.py), written into the row notes of
docs/performance.md whenever a row misses its target: what was measured, when, and what would
fix it. Measured by hand (``python -m bench.real_pbx_load --profile DIR``: cProfile on the
adapter's event-loop thread, CPU time; the 1-call run's profile subtracted from the 100-call
run's, so start-up is left out), not on every run: the figures say which session measured them.
"""

from __future__ import annotations

__all__ = ["cpu_note", "start_note"]

_ASTERISK_CPU = (
    "measured (session 15, 100 calls): 12-18 ms of adapter CPU per call, about half in its "
    "event loop's thread and half in its other threads (the finalisers mixing each recording's "
    "two MixMonitor tracks into the published WAV, about 2 ms a recording; aiosqlite's thread "
    "running the store's statements). The loop's share is spread thin: asyncio's own machinery "
    "18 %, SQL 12 % (6 statements a call), the webhooks' form encoding and signatures 11 %, "
    "the HTTP client 8 % (8 requests a call: the TwiML fetch, the action, the status and "
    "recording callbacks), AMI 7 % (15 events a call once the event filter is set; 25 before, "
    "and the filter's A/B was within the noise), the interpreter and driver 7 %, paths 5 %, "
    "logging 2 %, the rest builtins called from all of them. Tried, no gain: uvloop for "
    "asyncio's loop (A/B, 4 runs each, loop-thread CPU unchanged). What would reach 0.25 "
    "(about 4.7 ms a call against Asterisk's 16-21): a third of today's work per call, not a "
    "faster part: the mix made by the PBX (MixMonitor writing the mixed file as well), a "
    "call's store writes as one statement, its callbacks' requests made without a task and a "
    "form encoding each"
)

_FREESWITCH_CPU = (
    "measured (session 14, 100 calls): the event loop's thread 1.35 s, the gevent thread that "
    "reads the call sockets 0.42 s, FreeSWITCH 5-6 s. A call costs the loop what it costs on "
    "Asterisk (see the Asterisk rows' note) plus ESL's events: 70-130 URL-encoded headers "
    "each, framed in the gevent thread and handed to the loop one burst at a time. What would "
    "go further: read the call sockets in asyncio instead of a gevent thread (perf-limits note "
    "3), then the same as on Asterisk"
)

_FREESWITCH_START = (
    "measured (session 14, stamps in the adapter against FreeSWITCH's event times, medians): "
    "the socket application → the adapter's accept 128 ms; → the call set up (connect, "
    "myevents, linger) 190 ms; → the answer sent 260 ms (the call's row, the TwiML fetch, the "
    "session); → its completion back 111 ms. The 100 calls arrive within 360 ms and the two "
    "cores are 62-68 % busy over the run, most of it in that first second (FreeSWITCH 5 s, "
    "the adapter 2.5 s): the calls wait for CPU (a 0.5 ms GIL switch interval changed "
    "nothing, so the two threads do not wait for each other). Asterisk's p99 at 100 calls "
    "met the target in the same bench runs. What would fix it: less adapter CPU per call (the "
    "CPU row's note), or a core free for the adapter"
)


def cpu_note(pbx_name: str) -> str:
    """The note of a CPU row that misses its target, for the PBX called `pbx_name`."""
    return _ASTERISK_CPU if pbx_name.startswith("Asterisk") else _FREESWITCH_CPU


def start_note(pbx_name: str) -> str:
    """The note of a recording-start row that misses its p99 target."""
    if pbx_name.startswith("Asterisk"):
        return ("not measured: Asterisk met the target in every earlier run; profile it as "
                "the module docstring says")
    return _FREESWITCH_START
