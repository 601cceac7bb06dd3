"""greenswitch with the adapter's framing (`adapter.pbx.freeswitch.esl`), in the gevent thread:
replies in order, a command that gets no reply, a lost connection, events in order, and the
test server's frames against the lab transcripts; commands sent together, on the real
FreeSWITCH."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from esl_server.channel import FakeChannel
from esl_server.codec import (
    TRANSCRIPT_ANSWER_COMPLETE,
    TRANSCRIPT_CONNECT_REPLY,
    api_response,
    command_reply,
)
from freeswitch_lab import FreeSwitchStack
from greenswitch.esl import InboundESL

from adapter.pbx.base import PbxError
from adapter.pbx.freeswitch.bridge import GeventBridge
from adapter.pbx.freeswitch.esl import FramedInboundESL, NotConnectedError, ParsedEvent
from adapter.pbx.freeswitch.protocol import EslEvent


class ScriptedServer:
    """An inbound ESL peer whose answers the test writes itself."""

    def __init__(self) -> None:
        self.commands: asyncio.Queue[str] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        writer.write(b"Content-Type: auth/request\n\n")
        self.connected.set()
        while True:
            try:
                block = await reader.readuntil(b"\n\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            command = block.decode().rstrip("\n")
            if command.startswith("auth "):
                writer.write(command_reply("+OK accepted"))
            else:
                await self.commands.put(command)

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


Peer = tuple[GeventBridge, ScriptedServer, FramedInboundESL]


async def connected(bridge: GeventBridge, host: str, port: int, password: str,
                    command_timeout: float | None = None) -> FramedInboundESL:
    """A `FramedInboundESL` connected in `bridge`'s gevent thread."""
    def connect() -> FramedInboundESL:
        esl = FramedInboundESL(host, port, password, timeout=5)
        if command_timeout is not None:
            esl.command_timeout = command_timeout
        esl.connect()
        return esl

    esl: FramedInboundESL = await bridge.start(connect, within=10)
    return esl


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    server = ScriptedServer()
    await server.start()
    bridge = GeventBridge("test-esl")
    esl = await connected(bridge, "127.0.0.1", server.port, "ClueCon", command_timeout=0.5)
    yield bridge, server, esl
    await bridge.stop(lambda: esl.stop(timeout=0.5), within=5)
    await server.stop()


async def test_it_is_greenswitch(peer: Peer) -> None:
    _bridge, _server, esl = peer
    assert isinstance(esl, InboundESL) and esl.connected


async def test_replies_in_order_from_two_greenlets(peer: Peer) -> None:
    bridge, server, esl = peer
    first = asyncio.ensure_future(bridge.call(esl.api, "one"))
    second = asyncio.ensure_future(bridge.call(esl.api, "two"))
    commands = [await server.commands.get(), await server.commands.get()]
    for command in commands:
        server.send(api_response(f"reply to {command}"))
    assert (await first, await second) == ("reply to api one", "reply to api two")


async def test_no_reply_times_out_and_the_late_reply_lines_up(peer: Peer) -> None:
    """greenswitch waits forever; here the command fails, and its late reply does not get
    mistaken for the next command's."""
    bridge, server, esl = peer
    with pytest.raises(PbxError, match="no ESL reply"):
        await bridge.call(esl.api, "slow")
    assert await server.commands.get() == "api slow"
    server.send(api_response("late"))
    answer = asyncio.ensure_future(bridge.call(esl.api, "next"))
    assert await server.commands.get() == "api next"
    server.send(api_response("on time"))
    assert await answer == "on time"


async def test_lost_connection_fails_the_pending_command(peer: Peer) -> None:
    bridge, server, esl = peer
    pending = asyncio.ensure_future(bridge.call(esl.api, "status"))
    await server.commands.get()
    assert server.writer is not None
    server.writer.close()
    with pytest.raises(NotConnectedError):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(NotConnectedError):
        await bridge.call(esl.api, "status")


async def test_events_reach_handlers_in_order(peer: Peer) -> None:
    bridge, server, esl = peer
    loop_events: list[tuple[str, str]] = []
    done = asyncio.Event()

    def on_any(event: ParsedEvent) -> None:
        bridge.post(loop_events.append, ("*", event.event.name))
        if event.event.name == "CHANNEL_HANGUP_COMPLETE":
            bridge.post(done.set)

    def on_dtmf(event: ParsedEvent) -> None:
        bridge.post(loop_events.append, ("DTMF", event.event.get("DTMF-Digit")))

    def register() -> None:
        esl.register_handle("*", on_any)
        esl.register_handle("DTMF", on_dtmf)

    await bridge.call(register)
    channel = FakeChannel(uuid="b20481ed-3a19-4708-912f-fc4d3beb6c21", destination="1",
                          caller_number="2", created_us=1)
    server.send(b"".join([
        TRANSCRIPT_ANSWER_COMPLETE,
        channel.event("DTMF", timestamp_us=2, sequence=2, extra=[("DTMF-Digit", "#")]),
        channel.event("CHANNEL_HANGUP_COMPLETE", timestamp_us=3, sequence=3),
    ]))
    await asyncio.wait_for(done.wait(), 5)
    assert loop_events == [("*", "CHANNEL_EXECUTE_COMPLETE"), ("DTMF", "#"), ("*", "DTMF"),
                           ("*", "CHANNEL_HANGUP_COMPLETE")]


def test_parsed_event_refuses_greenswitch_decoding() -> None:
    event = ParsedEvent(EslEvent({"Event-Name": "X"}))
    assert event.headers == {"Event-Name": "X"}
    with pytest.raises(RuntimeError):
        event.parse_data("Event-Name: Y")


async def test_connect_timeout_when_no_auth_request() -> None:
    """A peer that accepts but never asks for auth: start fails within connect_timeout."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    bridge = GeventBridge("test-esl")

    def connect() -> None:
        FramedInboundESL("127.0.0.1", port, "ClueCon", timeout=5).connect()

    with pytest.raises(PbxError, match="start took over"):
        await bridge.start(connect, within=0.3)
    silent.close()


# --- the test server against the lab transcripts ----------------------------------------------

T4_VARIABLES = [
    ("direction", "inbound"), ("uuid", "b20481ed-3a19-4708-912f-fc4d3beb6c21"),
    ("session_id", "10"), ("channel_name", "loopback/sock-b"), ("read_codec", "L16"),
    ("read_rate", "8000"), ("write_codec", "L16"), ("write_rate", "8000"),
    ("origination_uuid", "f69f0d24-0200-4261-9f2f-210ee6ccad29"),
    ("other_loopback_leg_uuid", "f69f0d24-0200-4261-9f2f-210ee6ccad29"),
    ("loopback_leg", "B"), ("call_uuid", "b20481ed-3a19-4708-912f-fc4d3beb6c21"),
    ("lab_marker", "outbound-esl"), ("current_application_data", "127.0.0.1:8084 async full"),
    ("current_application", "socket"), ("socket_host", "127.0.0.1"),
]


def t4_channel() -> FakeChannel:
    return FakeChannel(uuid="b20481ed-3a19-4708-912f-fc4d3beb6c21", destination="sock",
                       caller_number="0000000000", channel_name="loopback/sock-b",
                       created_us=1795312697415271, variables=T4_VARIABLES, context="lab")


def test_test_server_connect_reply_is_the_transcripts() -> None:
    frame = t4_channel().connect_reply(timestamp_us=1795312697415271, sequence=935)
    assert frame == TRANSCRIPT_CONNECT_REPLY


def test_test_server_events_are_the_transcripts() -> None:
    """The variables change as FreeSWITCH changes them (current_application_data deleted for
    an application without argument, re-set variables moved to the end)."""
    channel = t4_channel()
    for name, value in [("current_loop", "1"), ("total_loops", "1"),
                        ("current_application_data", ""), ("current_application", "answer")]:
        channel.set_var(name, value)
    channel.answer_state, channel.answered_us = "answered", 1795312697455261
    channel.call_state = "ACTIVE"
    channel.set_var("endpoint_disposition", "ANSWER")
    frame = channel.event("CHANNEL_EXECUTE_COMPLETE", timestamp_us=1795312697455261,
                          sequence=942, extra=[
                              ("Application", "answer"), ("Application-Response", "_none_"),
                              ("Application-UUID", "b6bfa745-c78f-42f0-bc5e-e8ca0df910a7")])
    assert frame == TRANSCRIPT_ANSWER_COMPLETE


async def test_commands_sent_together_get_their_own_replies_on_the_real_switch(
    freeswitch_real: FreeSwitchStack,
) -> None:
    """`send_many` writes its commands at once and waits once (a call's set-up is one round
    trip, not three): the real FreeSWITCH answers them one after another, and each command
    gets its own reply, a refused one included."""
    bridge = GeventBridge("test-esl-many")
    esl = await connected(bridge, freeswitch_real.esl_host, freeswitch_real.esl_port,
                          freeswitch_real.esl_password)
    try:
        replies = await bridge.call(
            esl.send_many, ("api echo one", "api no_such_command", "api echo three"),
            within=10)
    finally:
        await bridge.stop(lambda: esl.stop(timeout=1), within=10)
    texts = [str(reply.data).strip() for reply in replies]
    assert texts[0] == "one" and texts[2] == "three"
    assert texts[1].startswith("-ERR") and "no_such_command" in texts[1]
