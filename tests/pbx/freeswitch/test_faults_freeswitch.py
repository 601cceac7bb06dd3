"""The FreeSWITCH driver against the ESL test server (`esl_server`), for what a real switch
cannot be made to do on demand: the disconnect notice before or after the lingering events, an
ACL's rude rejection, a channel forgotten while its outbound socket stays open, a forged header
inside a caller's name. The driver's behaviour on a real FreeSWITCH is tested in
tests/pbx/freeswitch/test_driver_freeswitch.py (a dropped inbound connection:
tests/pbx/freeswitch/test_reconnect_freeswitch.py, through tests/support/tcp_proxy.py)."""

from __future__ import annotations

import asyncio
import itertools
import math
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from esl_server.call import FakeCall
from esl_server.plans import AppRun, RecordPlan
from fake_freeswitch_rig import Call, Rig, fake_fs, settings_for, started_rig

from adapter.pbx.base import (
    CallGone,
    PbxError,
    RecordEnd,
    RecordResult,
)
from adapter.pbx.freeswitch import FreeSwitchDriver
from adapter.pbx.freeswitch.beep import BEEP_SECONDS
from adapter.pbx.freeswitch.mapping import BEEP_FILE


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with started_rig(tmp_path) as rig:
        yield rig


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def write_prompt(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x10\x00" * int(8000 * seconds))
    return path


async def next_app(fake: FakeCall, app: str) -> AppRun:
    while (run := await asyncio.wait_for(fake.app_started.get(), 10)).app != app:
        pass
    return run


# --- the call ---------------------------------------------------------------------------------


# --- <Record> ---------------------------------------------------------------------------------


async def record(rig: Rig, call: Call, plan: RecordPlan, **request: object) -> RecordResult:
    call.fake.plan_record(plan)
    await call.control.answer()
    return await call.control.record(rig.request(**request))  # type: ignore[arg-type]


@pytest.mark.parametrize("notice_first", [False, True])
async def test_record_ended_by_hangup(tmp_path: Path, notice_first: bool) -> None:
    """With linger the RECORD_STOP and the completion still arrive after the hang-up, whether
    the disconnect notice comes before them or after (lab notes §8.10 / transcript t4)."""
    async with started_rig(tmp_path) as rig:
        call = await rig.call(notice_first=notice_first)
        result = await record(rig, call, RecordPlan(talk_s=5, hangup_at=1.2))
        assert result.end is RecordEnd.HANGUP
        assert wav_seconds(rig.request().path) == pytest.approx(1.2, abs=0.05)
        assert call.control.hung_up.is_set()
        with pytest.raises(CallGone):
            await call.control.play(rig.spool / BEEP_FILE)


# An application can complete just before its channel's hangup with no sign of it (mod_loopback
# fails a leg's reads before it hangs the leg up; seen on a loaded CI machine, where a caller's
# hangup during a real FreeSWITCH's record came out as a <Record> that ran to its end). The order
# cannot be made on demand on a real switch; the ESL test server makes it here.


async def recording_running(rig: Rig) -> tuple[Call, asyncio.Future[RecordResult]]:
    """An answered call whose caller talks for 5 s, its ``record`` running (no beep)."""
    call = await rig.call()
    call.fake.plan_record(RecordPlan(talk_s=5))
    await call.control.answer()
    recording = asyncio.ensure_future(call.control.record(rig.request(beep=False)))
    await next_app(call.fake, "record")
    return call, recording


async def test_record_cut_short_by_the_media_then_hung_up_is_a_hangup(rig: Rig) -> None:
    call, recording = await recording_running(rig)
    call.fake.media_ends_then_hangup(0.3)
    result = await recording
    assert result.end is RecordEnd.HANGUP
    assert call.fake.runs("record")[0].interrupted == "media-end"  # before the hangup


async def test_pause_cut_short_by_the_media_then_hung_up_is_gone(rig: Rig) -> None:
    call = await rig.call()
    await call.control.answer()
    pause = asyncio.ensure_future(call.control.pause(30))
    await next_app(call.fake, "sleep")
    call.fake.media_ends_then_hangup(0.3)
    with pytest.raises(CallGone):
        await pause
    assert call.fake.runs("sleep")[0].interrupted == "media-end"


async def test_record_cut_short_without_a_hangup_still_ends_the_record(rig: Rig) -> None:
    """An outside ``uuid_break`` (an operator's): the record ends, the call goes on."""
    call, recording = await recording_running(rig)
    call.fake.break_app()
    result = await recording
    assert result.end is RecordEnd.MAX_LENGTH and not call.control.hung_up.is_set()
    await call.control.pause(1)  # the call is still up


# --- the lab notes' gotchas -------------------------------------------------------------------


async def test_spoofed_caller_id_end_to_end(rig: Rig) -> None:
    """Issue 4's regression through the driver: the forged Unique-ID stays inside the name."""
    name = "Bob\nUnique-ID: spoofed"
    call = await rig.call(caller_name=name)
    assert call.incoming.pbx_call_id == call.fake.uuid
    assert call.incoming.caller_name == name
    await call.control.answer()  # commands go to the real channel (the server checks)
    assert call.fake.channel.answer_state == "answered"


# --- connections ------------------------------------------------------------------------------


async def test_rude_rejection(tmp_path: Path) -> None:
    fs = fake_fs(tmp_path, reject=True)
    await fs.start()
    driver = FreeSwitchDriver(settings_for(fs, tmp_path / "spool"))
    with pytest.raises(PbxError):
        await driver.start(lambda incoming: asyncio.sleep(0))
    await fs.stop()


async def test_outbound_port_in_use(tmp_path: Path) -> None:
    fs = fake_fs(tmp_path)
    await fs.start()
    busy = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = busy.sockets[0].getsockname()[1]
    driver = FreeSwitchDriver(settings_for(fs, tmp_path / "spool", listen_port=port))
    with pytest.raises(PbxError, match="cannot listen"):
        await driver.start(lambda incoming: asyncio.sleep(0))
    busy.close()
    await fs.stop()


async def test_a_channel_gone_after_reconnecting_is_treated_as_ended(tmp_path: Path) -> None:
    """After a reconnect the driver asks ``uuid_exists`` about each call, and treats one that
    FreeSWITCH no longer knows as ended. On the test server because a real switch cannot be
    made, on demand, to forget a channel while that channel's outbound socket stays open and
    silent (a gone channel's socket says so itself). The reconnect on the real switch:
    tests/pbx/freeswitch/test_reconnect_freeswitch.py."""
    async with started_rig(tmp_path, reconnect_initial=0.05, reconnect_max=0.4,
                           api_wait=0.3) as rig:
        kept, lost = await rig.call(), await rig.call()
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        rig.fs.forget_call(lost.fake.uuid)
        rig.fs.set_inbound_down(False)
        await asyncio.wait_for(lost.control.hung_up.wait(), 10)
        assert f"api uuid_exists {lost.fake.uuid}" in rig.fs.inbound_commands
        assert f"api uuid_exists {kept.fake.uuid}" in rig.fs.inbound_commands
        assert not kept.control.hung_up.is_set()
        await kept.control.answer()


async def test_beep_file_is_a_real_beep(rig: Rig) -> None:
    path = rig.spool / BEEP_FILE
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        frames = wav.readframes(wav.getnframes())
    samples = [int.from_bytes(frames[i:i + 2], "little", signed=True)
               for i in range(0, len(frames), 2)]
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    assert crossings / (len(samples) / 8000) == pytest.approx(1000, rel=0.02)
    assert max(samples) > 0.4 * 32767 and math.isclose(len(samples) / 8000, BEEP_SECONDS)
