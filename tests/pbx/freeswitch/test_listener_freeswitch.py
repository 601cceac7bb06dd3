"""The outbound socket listener over the ESL test server (issue #13 rows 1 and 4).

Backpressure on the ESL event path: a burst on a call's outbound socket,
through `OutboundListener` and `GeventBridge`, never queues more than the bridge's bound of
posted-but-not-handled events; every event still arrives, in order, and the hung-up call's
lingering events and its close come after them. The close notice, posted as the socket ends,
waits within the bound like the events.

FreeSWITCH cannot be made to send a burst of events on demand: the ESL test server (the lab
transcripts' bytes over real sockets) writes it, and the asyncio loop is held back on the first
event until the gevent reader has filled the bound, so the test does not depend on which side
of the machine is faster.

Memory per call: of the ``connect`` reply's channel data (some 190 headers) a call keeps only
`CHANNEL_DATA_FIELDS`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fake_freeswitch_rig import fake_fs

from adapter.pbx.freeswitch.bridge import GeventBridge
from adapter.pbx.freeswitch.driver import incoming_from
from adapter.pbx.freeswitch.listener import CHANNEL_DATA_FIELDS, CallLink, OutboundListener
from adapter.pbx.freeswitch.protocol import EslEvent

BOUND = 20
BURST = 2_000
# What a lingering call sends after the burst: its hang-up events, then the notice.
AFTER_THE_BURST = ["CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "text/disconnect-notice"]
HOLD_LIMIT = 60.0  # seconds the first event may hold the loop waiting for the reader


class Sink:
    """The asyncio side: notes every event of the call, in the order handled."""

    def __init__(self, bridge: GeventBridge) -> None:
        self.bridge = bridge
        self.events: list[EslEvent] = []
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.events_at_close = -1
        self.pending_when_released = -1
        self.links: list[CallLink] = []
        self.channel_data: list[EslEvent] = []

    def call_opened(self, link: CallLink, channel_data: EslEvent) -> None:
        link.on_event = self.on_event
        self.links.append(link)
        self.channel_data.append(channel_data)

    def call_ready(self, link_id: int) -> None:
        self.ready.set()

    def call_closed(self, link_id: int) -> None:
        self.events_at_close = len(self.events)
        self.closed.set()

    def on_event(self, event: EslEvent) -> None:
        if event.get("variable_burst_index") == "0":
            self._hold_until_the_reader_waits()
        self.events.append(event)

    def _hold_until_the_reader_waits(self) -> None:
        # Blocks the loop (the point of the test): the reader goes on parsing until the bound.
        deadline = time.monotonic() + HOLD_LIMIT
        while self.bridge.pending < self.bridge.max_pending and time.monotonic() < deadline:
            time.sleep(0.001)  # no event says "the gevent thread filled the FIFO": poll
        time.sleep(0.05)  # a reader that did not stop would post more meanwhile
        self.pending_when_released = self.bridge.pending


async def _burst_then_hang_up(tmp_path: Path, burst: int, *, hang_up: bool = True
                              ) -> tuple[Sink, GeventBridge]:
    """`burst` events on a call's socket, then its hang-up, or (not `hang_up`) the socket's
    end at once, written before the loop can take a turn."""
    fs = fake_fs(tmp_path, scale=0.02)
    await fs.start()
    bridge = GeventBridge("test-backpressure", max_pending=BOUND)
    sink = Sink(bridge)
    listener = OutboundListener("127.0.0.1", 0, sink=sink, bridge=bridge,
                                setup_timeout=10, command_timeout=10)
    try:
        address = await bridge.start(listener.start, within=10)
        call = fs.place_call(address, to="+15557650000", from_="+15551230014")
        await asyncio.wait_for(sink.ready.wait(), 30)
        assert call.myevents and call.linger
        for index in range(burst):  # one synchronous burst, then the hang-up behind it
            call.emit("CHANNEL_EXECUTE", extra=[("variable_burst_index", str(index))])
        if hang_up:
            call.caller_hangup()
        else:
            call.end_socket_now()
        await asyncio.wait_for(sink.closed.wait(), 120)
    finally:
        await bridge.stop(listener.stop, within=10)
        await fs.stop()
    return sink, bridge


async def test_a_burst_queues_at_most_the_bound_and_every_event_arrives_in_order(
    tmp_path: Path,
) -> None:
    sink, bridge = await _burst_then_hang_up(tmp_path, BURST)

    assert sink.pending_when_released == BOUND  # the reader stopped at the bound, not after
    assert bridge.peak_pending <= BOUND
    indexes = [int(e.get("variable_burst_index")) for e in sink.events
               if e.name == "CHANNEL_EXECUTE"]
    assert indexes == list(range(BURST))
    names = [e.name or e.get("Content-Type") for e in sink.events]
    after_burst = names[names.index("CHANNEL_EXECUTE") + BURST:]
    assert "CHANNEL_EXECUTE" not in after_burst  # the burst was one run, nothing interleaved
    assert after_burst == AFTER_THE_BURST  # the lingering events arrived, then the notice
    assert sink.events_at_close == len(sink.events)  # closed only after every event
    assert bridge.pending == 0


async def test_the_close_notice_waits_within_the_bound_too(tmp_path: Path) -> None:
    # The burst fills the bound while the loop is held on its first event, and the socket
    # ends right behind it (a hang-up's events would need the test server's loop, held too):
    # the call's close notice, posted as the socket ends, must wait like an event (CI once
    # saw 21 of 20 when it did not).
    sink, bridge = await _burst_then_hang_up(tmp_path, BOUND, hang_up=False)

    assert sink.pending_when_released == BOUND
    assert bridge.peak_pending == BOUND
    names = [e.name or e.get("Content-Type") for e in sink.events]
    assert names[names.index("CHANNEL_EXECUTE"):] == ["CHANNEL_EXECUTE"] * BOUND
    assert sink.events_at_close == len(sink.events)  # the close came after every event
    assert bridge.pending == 0


async def test_a_call_keeps_only_the_channel_data_the_driver_reads(tmp_path: Path) -> None:
    fs = fake_fs(tmp_path, scale=0.02)
    await fs.start()
    bridge = GeventBridge("test-channel-data")
    sink = Sink(bridge)
    listener = OutboundListener("127.0.0.1", 0, sink=sink, bridge=bridge,
                                setup_timeout=10, command_timeout=10)
    try:
        address = await bridge.start(listener.start, within=10)
        call = fs.place_call(address, to="+15557650000", from_="+15551230014",
                             caller_name="Ann")
        await asyncio.wait_for(sink.ready.wait(), 30)
        sent = call.channel.connect_reply(timestamp_us=0, sequence=1).count(b"\n")
        (link,), (data,) = sink.links, sink.channel_data
        kept = dict(link.session.session_data or {})
        sock_file = link.session.sock_file
        call.caller_hangup()
        await asyncio.wait_for(sink.closed.wait(), 30)
    finally:
        await bridge.stop(listener.stop, within=10)
        await fs.stop()

    assert sent > 100  # what the test server sends (the real one: about 190)
    assert set(data.headers) <= set(CHANNEL_DATA_FIELDS)
    assert kept == dict(data.headers)  # greenswitch's copy is the same few fields
    assert data.unique_id == call.uuid
    assert data.get("Reply-Text").startswith("+OK")
    assert incoming_from(data) == ("+15557650000", "+15551230014", "Ann")
    assert data.get("Caller-Context")  # the outbound-call check reads it
    assert sock_file is None  # greenswitch's buffered file on the socket is not kept
