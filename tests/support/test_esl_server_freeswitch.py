"""The ESL test server's uuid_record and bridge speak as FreeSWITCH 1.10.12 does: the api
replies byte for byte as in transcripts t1/t6 (their Content-Length included), the RECORD_*
headers in the transcripts' order, and the behaviours of mod_commands / switch_ivr_async.c /
switch_channel_handle_cause that the driver relies on."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from esl_server.originate import parse_dial_string
from esl_server.server import FakeFreeSwitch
from fake_freeswitch_rig import PBX_SPOOL, Rig, started_rig

from adapter.pbx.freeswitch.protocol import EslParser

# From raw_t1_uuid_record.txt / t6_errors.txt: each api/response frame as FreeSWITCH sent it.
REPLY_OK = b"Content-Type: api/response\nContent-Length: 12\n\n+OK Success\n"
REPLY_NOT_RECORDING = (b"Content-Type: api/response\nContent-Length: 33\n\n"
                       b"-ERR Cannot stop record session!\n")
REPLY_CANNOT_MASK = (b"Content-Type: api/response\nContent-Length: 36\n\n"
                     b"-ERR Cannot mask recording session!\n")
REPLY_NO_SESSION = (b"Content-Type: api/response\nContent-Length: 28\n\n"
                    b"-ERR Cannot locate session!\n")
REPLY_USAGE = (b"Content-Type: api/response\nContent-Length: 76\n\n"
               b"-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n")
REPLY_CANNOT_RECORD = (b"Content-Type: api/response\nContent-Length: 28\n\n"
                       b"-ERR Cannot record session!\n")


class RawInbound:
    """A bare inbound ESL client that keeps every byte FreeSWITCH sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, fs: FakeFreeSwitch) -> RawInbound:
        reader, writer = await asyncio.open_connection(*fs.address)
        client = cls(reader, writer)
        assert await reader.readuntil(b"\n\n") == b"Content-Type: auth/request\n\n"
        writer.write(b"auth ClueCon\n\n")
        assert b"+OK accepted" in await reader.readuntil(b"\n\n")
        return client

    async def api(self, command: str) -> bytes:
        self.writer.write(f"api {command}\n\n".encode())
        head = await self.reader.readuntil(b"\n\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\n")[0])
        return head + await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def capture(rig: Rig, fake_call: object) -> list[bytes]:
    """Every frame the server writes on the call's socket, from now on."""
    frames: list[bytes] = []
    original = fake_call._write  # type: ignore[attr-defined]

    def write(data: bytes) -> None:
        frames.append(data)
        original(data)

    fake_call._write = write  # type: ignore[attr-defined]
    return frames


def events(frames: list[bytes], name: str) -> list[list[tuple[str, str]]]:
    """The header lines (undecoded names, decoded values) of each `name` event, in order."""
    out = []
    parser = EslParser()
    for frame in parser.feed(b"".join(frames)):
        if frame.content_type != "text/event-plain":
            continue
        block = frame.body.split(b"\n\n")[0].decode()
        lines = [tuple(line.split(": ", 1)) for line in block.split("\n")]
        if ("Event-Name", name) in lines:
            out.append(lines)
    return out  # type: ignore[return-value]


async def test_uuid_record_replies_byte_for_byte(tmp_path: Path) -> None:
    async with started_rig(tmp_path) as rig:
        call = await rig.call()
        await call.control.answer()
        raw = await RawInbound.open(rig.fs)
        uuid, path = call.fake.uuid, f"{PBX_SPOOL}/recordings/t1_basic.wav"
        try:
            assert await raw.api(f"uuid_record {uuid} start {path}") == REPLY_OK
            assert await raw.api(f"uuid_record {uuid} start {path}") == REPLY_OK  # no-op
            assert await raw.api(f"uuid_record {uuid} mask {path}") == REPLY_OK
            assert await raw.api(f"uuid_record {uuid} unmask {path}") == REPLY_OK
            assert await raw.api(f"uuid_record {uuid} stop {PBX_SPOOL}/x.wav") == (
                REPLY_NOT_RECORDING)
            assert await raw.api(f"uuid_record {uuid} mask {PBX_SPOOL}/x.wav") == (
                REPLY_CANNOT_MASK)
            assert await raw.api(
                f"uuid_record 00000000-dead-beef-0000-000000000000 start {path}") == (
                REPLY_NO_SESSION)
            assert await raw.api(f"uuid_record {uuid} start") == REPLY_USAGE
            assert await raw.api(f"uuid_record {uuid} start {PBX_SPOOL}/t6_bad.xyz") == (
                REPLY_CANNOT_RECORD)
            assert await raw.api(f"uuid_record {uuid} stop {path}") == REPLY_OK
            assert len(call.fake.finished_recordings) == 1  # one recording, one RECORD_STOP
        finally:
            raw.close()


async def test_record_events_carry_the_transcripts_headers(tmp_path: Path) -> None:
    async with started_rig(tmp_path) as rig:
        call = await rig.call()
        await call.control.answer()
        frames = capture(rig, call.fake)
        uuid, path = call.fake.uuid, f"{PBX_SPOOL}/recordings/t1_limit.wav"
        assert (await rig.driver.api(
            f"uuid_record {uuid} start {path} 0 {{lab_tag=abc,RECORD_READ_ONLY=true}}")
        ).startswith("+OK")
        await call.control.pause(1)
        assert (await rig.driver.api(f"uuid_record {uuid} stop {path}")).startswith("+OK")
        (start,), (stop,) = events(frames, "RECORD_START"), events(frames, "RECORD_STOP")
        assert ("Event-Calling-Function", "record_callback") in start
        assert ("Event-Calling-Function", "send_record_stop_event") in stop
        # after the variables, as in raw_t1: the path, the recording's own variables, the cause
        assert [n for n, _ in start][-3:] == [
            "Record-File-Path", "Recording-Variable-lab_tag", "Recording-Variable-RECORD_READ_ONLY"]
        assert [n for n, _ in stop][-4:] == [
            "Record-File-Path", "Recording-Variable-lab_tag",
            "Recording-Variable-RECORD_READ_ONLY", "Record-Completion-Cause"]
        values = dict(stop)
        assert values["Record-Completion-Cause"] == "success-maxtime"  # a manual stop, §8.3
        local = rig.spool / "recordings" / "t1_limit.wav"
        with wave.open(str(local), "rb") as wav:
            assert wav.getnchannels() == 1  # READ_ONLY
            assert values["variable_record_samples"] == str(wav.getnframes())
        assert values["variable_record_file_size"] == str(local.stat().st_size)


async def test_relative_paths_and_stop_all(tmp_path: Path) -> None:
    """§7.5: a relative path is resolved against sound_prefix (stop needs the resolved one);
    ``stop all`` ends every recording of the channel, each with its RECORD_STOP."""
    async with started_rig(tmp_path) as rig:
        call = await rig.call()
        await call.control.answer()
        rig.fs.sound_prefix.mkdir()
        uuid = call.fake.uuid
        assert (await rig.driver.api(f"uuid_record {uuid} start rel.wav")).startswith("+OK")
        assert (await rig.driver.api(f"uuid_record {uuid} stop rel.wav")).startswith("-ERR")
        for name in ("one", "two"):
            assert (await rig.driver.api(
                f"uuid_record {uuid} start {PBX_SPOOL}/{name}.wav")).startswith("+OK")
        await call.control.pause(1)
        assert (await rig.driver.api(f"uuid_record {uuid} stop all")).startswith("+OK")
        assert sorted(r.path for r in call.fake.finished_recordings) == sorted([
            f"{PBX_SPOOL}/one.wav", f"{PBX_SPOOL}/two.wav", f"{rig.fs.sound_prefix}/rel.wav"])
        assert (rig.fs.sound_prefix / "rel.wav").exists()


def test_dial_strings_split_like_switch_ivr_originate() -> None:
    global_vars, legs = parse_dial_string(
        "{a=1,execute_on_answer=sched_hangup +60 ALLOTTED_TIMEOUT}[x=1,y=2]sofia/gw/t/2000,"
        "sofia/external/sip:2001@host;transport=tcp")
    assert global_vars == {"a": "1", "execute_on_answer": "sched_hangup +60 ALLOTTED_TIMEOUT"}
    assert legs == [({"x": "1", "y": "2"}, "sofia/gw/t/2000"),
                    ({}, "sofia/external/sip:2001@host;transport=tcp")]
