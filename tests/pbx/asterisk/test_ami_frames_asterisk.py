"""AMI framing on bytes: caller data split across TCP reads, invalid UTF-8, oversized frames and
forged headers; first without I/O, then through AmiClient against a fake AMI on loopback."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_ami import GREETING, FakeAmi, frame
from hypothesis import given, settings
from hypothesis import strategies as st
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from adapter.pbx.asterisk.ami import AmiClient, AmiMessage
from adapter.pbx.asterisk.ami_frames import (
    AmiFrameReader,
    Dropped,
    MalformedFrame,
    parse_frame,
)
from adapter.pbx.asterisk.ami_protocol import FramedAmiProtocol

SECRET = "ami-secret-for-tests"
NAME = "Zoë Ångström 山田 🎉"  # 1-, 2-, 3- and 4-byte UTF-8 characters

NEWCHANNEL = frame({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001",
                    "CallerIDNum": "+15551230000", "CallerIDName": NAME})
HANGUP = frame({"Event": "Hangup", "Channel": "PJSIP/trunk-00000001", "Cause": "16"})
STREAM = GREETING + NEWCHANNEL + HANGUP


def _names(items: list[str | Dropped]) -> list[str]:
    out = []
    for item in items:
        assert isinstance(item, str), item
        message = parse_frame(item)
        out.append(message.get("CallerIDName") or message["Event"])
    return out


# --- sans-I/O: AmiFrameReader --------------------------------------------------------------------


def test_whole_stream_gives_whole_frames_and_the_version() -> None:
    reader = AmiFrameReader()
    assert _names(reader.feed(STREAM)) == [NAME, "Hangup"]
    assert reader.version == "11.0.0"


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_byte_keeps_every_character(cut: int) -> None:
    reader = AmiFrameReader()
    items = reader.feed(STREAM[:cut]) + reader.feed(STREAM[cut:])
    assert _names(items) == [NAME, "Hangup"]
    assert reader.version == "11.0.0"


@settings(max_examples=200)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_any_chunking_gives_the_same_frames(cuts: list[int]) -> None:
    reader = AmiFrameReader()
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    items: list[str | Dropped] = []
    for start, end in itertools.pairwise(bounds):
        items += reader.feed(STREAM[start:end])
    assert _names(items) == [NAME, "Hangup"]


def test_panoramisk_alone_loses_a_character_split_across_reads() -> None:
    """Why FramedAmiProtocol exists: the stock protocol decodes each read with 'ignore'."""
    cut = NEWCHANNEL.index("山".encode()) + 1  # inside the 3-byte character
    chunks = [GREETING + NEWCHANNEL[:cut], NEWCHANNEL[cut:] + HANGUP]
    assert _received_names(AMIProtocol, chunks)[0] != NAME
    assert _received_names(FramedAmiProtocol, chunks)[0] == NAME


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    reader = AmiFrameReader()
    raw = b"Event: Newchannel\r\nCallerIDName: caf\xe9 \xff\xfe ok\r\n\r\n"
    (text,) = reader.feed(raw)
    assert isinstance(text, str)
    assert parse_frame(text)["CallerIDName"] == "caf\ufffd \ufffd\ufffd ok"


def test_oversized_frame_is_dropped_and_memory_stays_bounded() -> None:
    reader = AmiFrameReader(max_frame=1000, max_line=1000)
    items: list[str | Dropped] = []
    items += reader.feed(b"Event: Flood\r\nX: ")
    for _ in range(100):  # 100 kB without an end of frame
        items += reader.feed(b"a" * 1000)
        assert len(reader._buffer) <= 1000
    items += reader.feed(b"\r\n\r\n" + HANGUP)
    assert len(items) == 2
    dropped, hangup = items
    assert isinstance(dropped, Dropped) and dropped.size > 100_000
    assert _names([hangup]) == ["Hangup"]


def test_frame_end_split_while_skipping_is_found() -> None:
    reader = AmiFrameReader(max_frame=100, max_line=100)
    items = reader.feed(b"Event: Flood\r\nX: " + b"b" * 300 + b"\r\n\r")
    items += reader.feed(b"\n" + HANGUP)
    assert [type(i) for i in items] == [Dropped, str]


def test_oversized_header_line_drops_only_its_frame() -> None:
    reader = AmiFrameReader(max_frame=10_000, max_line=100)
    long_line = frame({"Event": "Newchannel", "CallerIDName": "x" * 200})
    items = reader.feed(long_line + HANGUP)
    assert isinstance(items[0], Dropped) and "line" in items[0].reason
    assert _names(items[1:]) == ["Hangup"]


def test_no_greeting_is_fine() -> None:
    assert _names(AmiFrameReader().feed(HANGUP)) == ["Hangup"]


def test_repeated_identity_header_is_malformed() -> None:
    """A caller name holding CR/LF could forge a second Event line; panoramisk would make the
    header a list and crash in its dispatcher."""
    with pytest.raises(MalformedFrame):
        parse_frame("Event: Newchannel\r\nCallerIDName: x\r\nEvent: AsyncAGIExec")
    with pytest.raises(MalformedFrame):
        parse_frame("Response: Success\r\nActionID: 1\r\nActionID: 2")
    assert parse_frame("Event: X\r\nChanVariable: a=1\r\nChanVariable: b=2") is not None
    assert parse_frame("no header here") is None


# --- the protocol, fed directly --------------------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        pass


class _Factory:
    """What panoramisk's Manager gives its protocol: dispatch() for events."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[Any] = []
        self.fail_on = fail_on

    def dispatch(self, message: Any) -> None:
        if message["Event"] == self.fail_on:
            raise RuntimeError("handler bug")
        self.events.append(message)


def _protocol(cls: type[Any], factory: _Factory) -> Any:
    protocol = cls()
    protocol.connection_made(_Transport())
    protocol.factory = factory
    protocol.encoding = "utf8"
    return protocol


def _received_names(cls: type[Any], chunks: list[bytes]) -> list[str]:
    factory = _Factory()
    protocol = _protocol(cls, factory)
    for chunk in chunks:
        protocol.data_received(chunk)
    return [e.get("CallerIDName") or e["Event"] for e in factory.events]


def test_failing_handler_and_forged_frame_cost_one_message_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = _Factory(fail_on="Boom")
    protocol = _protocol(FramedAmiProtocol, factory)
    forged = b"Event: Newchannel\r\nCallerIDName: x\r\nEvent: AsyncAGIExec\r\n\r\n"
    with caplog.at_level(logging.WARNING):
        protocol.data_received(frame({"Event": "Boom"}) + forged + HANGUP)
    assert [e["Event"] for e in factory.events] == ["Hangup"]
    assert "malformed" in caplog.text and "handling event Boom failed" in caplog.text


@pytest.mark.parametrize("cls", [AMIProtocol, FramedAmiProtocol])
def test_forged_second_event_line_against_panoramisk_dispatch(cls: type[Any]) -> None:
    """The stock protocol lets panoramisk's dispatcher raise out of data_received (asyncio then
    closes the connection); ours drops the forged frame and goes on."""
    manager = Manager()
    seen: list[str] = []
    manager.register_event("*", lambda _m, event: seen.append(event["Event"]))
    protocol = _protocol(cls, _Factory())
    protocol.factory = manager
    forged = b"Event: A\r\nEvent: B\r\n\r\n" + HANGUP
    if cls is AMIProtocol:
        with pytest.raises(AttributeError):  # 'list' object has no attribute 'lower'
            protocol.data_received(forged)
    else:
        protocol.data_received(forged)
        assert seen == ["Hangup"]


# --- AmiClient against a fake AMI on loopback -------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(secret=SECRET)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def received() -> asyncio.Queue[AmiMessage]:
    """The Newchannel and Hangup events the ``client`` receives."""
    return asyncio.Queue()


@pytest.fixture
async def client(fake: FakeAmi, received: asyncio.Queue[AmiMessage]
                 ) -> AsyncIterator[AmiClient]:
    ami = AmiClient(host="127.0.0.1", port=fake.port, username="adapter", secret=SECRET,
                    connect_timeout=5)
    ami.on("Newchannel", received.put_nowait)  # handlers before the login's event filter
    ami.on("Hangup", received.put_nowait)
    await ami.connect()
    yield ami
    await ami.close()


def _reads(client: AmiClient) -> asyncio.Queue[bytes]:
    """Every chunk the client's protocol reads, in order (wraps the live protocol)."""
    reads: asyncio.Queue[bytes] = asyncio.Queue()
    protocol = client._manager.protocol
    original = protocol.data_received

    def spy(data: bytes) -> None:
        original(data)
        reads.put_nowait(data)

    protocol.data_received = spy
    return reads


async def test_caller_name_split_across_two_reads_arrives_whole(
    fake: FakeAmi, client: AmiClient, received: asyncio.Queue[AmiMessage]
) -> None:
    reads = _reads(client)
    cut = NEWCHANNEL.index("🎉".encode()) + 2  # inside the 4-byte character
    await fake.push(NEWCHANNEL[:cut])
    assert await asyncio.wait_for(reads.get(), 5) == NEWCHANNEL[:cut]  # one read, half a char
    await fake.push(NEWCHANNEL[cut:])
    event = await asyncio.wait_for(received.get(), 5)
    assert event["CallerIDName"] == NAME


async def test_oversized_frame_is_dropped_and_the_connection_survives(
    fake: FakeAmi, client: AmiClient, received: asyncio.Queue[AmiMessage],
    caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.pbx.asterisk.ami_protocol"):
        await fake.push(b"Event: Hangup\r\nX: " + b"z" * 200_000 + b"\r\n\r\n" + HANGUP)
        event = await asyncio.wait_for(received.get(), 5)
    assert event["Cause"] == "16" and "X" not in event
    assert "dropped a frame" in caplog.text
    reply = await asyncio.wait_for(client.agi("PJSIP/trunk-00000001", "ANSWER"), 5)
    assert reply.code == 200 and reply.result == 0


# --- found by fuzzing (tests/fuzz/fuzz_ami_frames.py): chunking must never change the frames ---


def _whole_and_bytewise(stream: bytes, **limits: int) -> tuple[list[str | Dropped], ...]:
    whole = AmiFrameReader(**limits).feed(stream)
    reader = AmiFrameReader(**limits)
    bytewise = [item for i in range(len(stream)) for item in reader.feed(stream[i : i + 1])]
    return whole, bytewise


def test_greeting_of_exactly_the_line_limit_whether_or_not_its_lf_came_late() -> None:
    greeting = b"Asterisk Call Manager/" + b"9" * (96 - 22) + b"\r\n"
    whole, bytewise = _whole_and_bytewise(greeting + HANGUP, max_frame=512, max_line=96)
    assert whole == bytewise and _names(whole) == ["Hangup"]


def test_frame_of_exactly_the_frame_limit_whether_or_not_its_end_came_late() -> None:
    body = b"Event: Hangup\r\nX: "
    frame_bytes = body + b"x" * (200 - len(body))
    whole, bytewise = _whole_and_bytewise(frame_bytes + b"\r\n\r\n", max_frame=200, max_line=200)
    assert whole == bytewise and _names(whole) == ["Hangup"]
