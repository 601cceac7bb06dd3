"""The FreeSWITCH driver end to end against the ESL test server (`fs_esl_server`): calls on the
outbound socket, every CallControl operation, each way a `<Record>` ends, and the lab notes'
gotchas (lab notes §8), one test each."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from fs_esl_server import STATUS_BODY, AppRun, FakeCall, FakeFreeSwitch, Key, RecordPlan

from adapter.pbx.base import (
    CallGone,
    IncomingCall,
    PathMap,
    PbxError,
    RecordEnd,
    RecordRequest,
    RecordResult,
)
from adapter.pbx.freeswitch import FreeSwitchDriver, FreeSwitchSettings
from adapter.pbx.freeswitch.beep import BEEP_SECONDS
from adapter.pbx.freeswitch.mapping import BEEP_FILE

PBX_SPOOL = PurePosixPath("/var/spool/freeswitch/twiml")  # another path than the adapter's
TO = "+15557650000"
FROM = "+15551230001"


@dataclass
class Call:
    fake: FakeCall
    incoming: IncomingCall
    release: asyncio.Event

    @property
    def control(self):  # type: ignore[no-untyped-def]
        return self.incoming.control


@dataclass
class Rig:
    fs: FakeFreeSwitch
    driver: FreeSwitchDriver
    spool: Path
    calls: asyncio.Queue[tuple[IncomingCall, asyncio.Event]] = field(
        default_factory=asyncio.Queue)

    async def call(self, *, caller_name: str = "Alice", notice_first: bool = False) -> Call:
        assert self.driver.outbound_address is not None
        fake = self.fs.place_call(self.driver.outbound_address, to=TO, from_=FROM,
                                  caller_name=caller_name, notice_first=notice_first)
        incoming, release = await asyncio.wait_for(self.calls.get(), 10)
        return Call(fake, incoming, release)

    def request(self, name: str = "RE1", *, finish_on_key: str = "1234567890*#",
                max_length: int = 30, timeout: int = 5, beep: bool = True) -> RecordRequest:
        return RecordRequest(path=self.spool / "recordings" / "CA1" / f"{name}.wav",
                             finish_on_key=finish_on_key, max_length=max_length,
                             silence_timeout=timeout, beep=beep)


def settings_for(fs: FakeFreeSwitch, spool: Path, **overrides: object) -> FreeSwitchSettings:
    values: dict[str, object] = dict(
        listen_host="127.0.0.1", listen_port=0, esl_host=fs.address[0], esl_port=fs.address[1],
        esl_password="ClueCon", spool=PathMap(local=spool, pbx=PBX_SPOOL),
        connect_timeout=5.0, command_timeout=5.0, linger_grace=2.0,
    )
    values.update(overrides)
    return FreeSwitchSettings(**values)  # type: ignore[arg-type]


def fake_fs(tmp_path: Path, **kwargs: object) -> FakeFreeSwitch:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return FakeFreeSwitch(spool_pbx=PBX_SPOOL, spool_local=spool,
                          sound_prefix=tmp_path / "sounds", **kwargs)  # type: ignore[arg-type]


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


async def test_incoming_call_and_narrow_subscriptions(rig: Rig) -> None:
    call = await rig.call()
    assert (call.incoming.to, call.incoming.from_, call.incoming.caller_name) == (
        TO, FROM, "Alice")
    assert call.incoming.pbx_call_id == call.fake.uuid
    assert call.fake.commands[:4] == [
        "connect", "myevents plain", "linger", "event plain RECORD_START RECORD_STOP"]
    assert call.fake.subscriptions == {"RECORD_START", "RECORD_STOP"}
    # inbound: password, a readiness check, and no event subscription at all (never ALL)
    assert rig.fs.inbound_commands == ["auth ClueCon", "api status"]
    assert "1.10.12" in rig.driver.version


async def test_answer_play_pause_digits_hangup(rig: Rig) -> None:
    call = await rig.call()
    ctl = call.control
    prompt = write_prompt(rig.spool / "prompts" / "say" / "hello.wav", 1.5)
    await ctl.answer()
    await ctl.play(prompt)
    await ctl.pause(2)
    await ctl.send_digits("12w#")
    assert [(r.app, r.arg) for r in call.fake.log] == [
        ("answer", ""),
        ("set", "playback_terminators=none"),
        ("playback", f"{PBX_SPOOL}/prompts/say/hello.wav"),
        ("sleep", "2000"),
        ("send_dtmf", "12w#"),
    ]
    playback = call.fake.runs("playback")[0]
    assert playback.played_s == pytest.approx(1.5, abs=0.05)  # played to the end
    assert call.fake.runs("sleep")[0].ended - call.fake.runs("sleep")[0].started >= 2.0
    assert call.fake.sent_dtmf == ["12w#"]
    # every sendmsg names the channel and carries our Event-UUID; nothing else is executed
    executes = [c for c in call.fake.commands if "call-command: execute" in c]
    assert all(c.startswith(f"sendmsg {call.fake.uuid}\n") for c in executes)
    assert [r.event_uuid for r in call.fake.log] == [
        c.split("Event-UUID: ")[1].split("\n")[0] for c in executes]

    await ctl.hangup()
    await asyncio.wait_for(call.fake.finished.wait(), 10)
    assert call.fake.hangup_by == "adapter"
    assert ctl.hung_up.is_set()
    with pytest.raises(CallGone):
        await ctl.play(prompt)
    await ctl.hangup()  # a no-op now


async def test_caller_hangs_up_while_idle(rig: Rig) -> None:
    call = await rig.call()
    call.fake.caller_hangup()
    await asyncio.wait_for(call.control.hung_up.wait(), 10)
    with pytest.raises(CallGone):
        await call.control.answer()


async def test_caller_hangs_up_during_playback(rig: Rig) -> None:
    call = await rig.call()
    prompt = write_prompt(rig.spool / "prompts" / "long.wav", 30)
    playing = asyncio.ensure_future(call.control.play(prompt))
    await next_app(call.fake, "playback")
    call.fake.caller_hangup()
    with pytest.raises(CallGone):
        await asyncio.wait_for(playing, 10)


async def test_terminate_while_an_application_runs(rig: Rig) -> None:
    """REST "end the call": uuid_kill on the inbound connection, not queued behind playback."""
    call = await rig.call()
    prompt = write_prompt(rig.spool / "prompts" / "long.wav", 30)
    playing = asyncio.ensure_future(call.control.play(prompt))
    await next_app(call.fake, "playback")
    await call.control.terminate()
    with pytest.raises(CallGone):
        await asyncio.wait_for(playing, 10)
    assert call.fake.hangup_by == "uuid_kill"
    assert f"api uuid_kill {call.fake.uuid} NORMAL_CLEARING" in rig.fs.inbound_commands
    await call.control.terminate()  # a no-op once gone


async def test_missing_prompt_is_an_error(rig: Rig) -> None:
    call = await rig.call()
    with pytest.raises(PbxError, match="FILE NOT FOUND"):
        await call.control.play(rig.spool / "prompts" / "missing.wav")


async def test_pause_before_answer_does_not_answer(rig: Rig) -> None:
    call = await rig.call()
    await call.control.pause(1)
    assert call.fake.channel.answer_state == "ringing"
    assert [r.app for r in call.fake.log] == ["sleep"]


# --- <Record> ---------------------------------------------------------------------------------


async def record(rig: Rig, call: Call, plan: RecordPlan, **request: object) -> RecordResult:
    call.fake.plan_record(plan)
    await call.control.answer()
    return await call.control.record(rig.request(**request))  # type: ignore[arg-type]


async def test_record_ended_by_key(rig: Rig) -> None:
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=3, keys=(Key(1.5, "#"),)))
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "#")
    file = rig.request().path
    assert wav_seconds(file) == pytest.approx(1.52, abs=0.05)
    beep, rec = call.fake.runs("playback")[0], call.fake.runs("record")[0]
    assert beep.arg == f"{PBX_SPOOL}/{BEEP_FILE}" and beep.played_s == pytest.approx(
        BEEP_SECONDS, abs=0.01)
    assert rec.arg == f"{PBX_SPOOL}/recordings/CA1/RE1.wav 30 200 5"
    assert beep.ended is not None and beep.ended <= rec.started
    assert [(r.app, r.arg) for r in call.fake.log if r.app != "playback"] == [
        ("answer", ""),
        ("set", "playback_terminators=none"),  # the beep is not cut by a key
        ("set", "playback_terminators=1234567890*#"),
        ("record", f"{PBX_SPOOL}/recordings/CA1/RE1.wav 30 200 5"),
    ]


async def test_record_ended_by_silence(rig: Rig) -> None:
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=1.0), timeout=2)
    assert result.end is RecordEnd.SILENCE
    assert wav_seconds(rig.request().path) == pytest.approx(3.0, abs=0.05)


async def test_record_ended_by_max_length_whole_seconds(rig: Rig) -> None:
    """The record application's limit is FreeSWITCH's whole-second epoch timer: maxLength N
    lasts between N and N+1 seconds (lab notes §8.4)."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=100), max_length=2, timeout=0)
    assert result.end is RecordEnd.MAX_LENGTH
    assert 2.0 <= wav_seconds(rig.request().path) <= 3.02
    assert call.fake.runs("record")[0].arg.endswith("RE1.wav 2")  # no silence arguments


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


async def test_a_key_during_the_beep_does_not_cut_it(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=0.2) as rig:  # a 50 ms beep: time to press in it
        call = await rig.call()
        await call.control.answer()
        call.fake.plan_record(RecordPlan(talk_s=1.0))
        recording = asyncio.ensure_future(call.control.record(rig.request(timeout=1)))
        await next_app(call.fake, "playback")
        call.fake.press("#")
        result = await asyncio.wait_for(recording, 10)
        beep = call.fake.runs("playback")[0]
        assert beep.interrupted is None and beep.played_s == pytest.approx(BEEP_SECONDS)
        assert result.end is RecordEnd.SILENCE  # the '#' went to the beep, not the record


async def test_hangup_during_the_beep(rig: Rig) -> None:
    call = await rig.call()
    await call.control.answer()
    recording = asyncio.ensure_future(call.control.record(rig.request()))
    run = await next_app(call.fake, "playback")
    assert run.arg.endswith(str(BEEP_FILE))
    call.fake.caller_hangup()
    result = await asyncio.wait_for(recording, 10)
    assert result.end is RecordEnd.HANGUP
    assert not call.fake.runs("record")


async def test_record_after_hangup_raises(rig: Rig) -> None:
    call = await rig.call()
    call.fake.caller_hangup()
    await asyncio.wait_for(call.control.hung_up.wait(), 10)
    with pytest.raises(CallGone):
        await call.control.record(rig.request())


# --- the lab notes' gotchas -------------------------------------------------------------------


async def test_gotcha_record_cannot_open_its_file(rig: Rig) -> None:
    """§8.9: the record APPLICATION hangs the call up when it cannot open the file (here the
    folder is a regular file); only CHANNEL_EXECUTE_COMPLETE comes, with stale record_ms."""
    (rig.spool / "recordings").write_bytes(b"not a folder")
    call = await rig.call()
    call.fake.channel.set_var("record_ms", "4500")  # left by an earlier recording
    await call.control.answer()
    result = await call.control.record(rig.request())
    assert result.end is RecordEnd.ERROR
    assert "DESTINATION_OUT_OF_ORDER" in result.detail
    assert call.fake.hangup_by == "record could not open its file"
    await asyncio.wait_for(call.control.hung_up.wait(), 10)


async def test_gotcha_stale_record_variables_and_causes(rig: Rig) -> None:
    """§8.2-8.3: record_* variables persist from one recording to the next (RECORD_START and
    other applications' completions carry them) and record_completion_cause is stale or absent;
    the second recording must be judged on its own RECORD_STOP."""
    call = await rig.call()
    first = await record(rig, call, RecordPlan(talk_s=3, keys=(Key(0.5, "#"),)))
    assert first.end is RecordEnd.FINISH_KEY
    call.fake.channel.set_var("record_completion_cause", "success-silence")  # from uuid_record
    call.fake.plan_record(RecordPlan(talk_s=100))
    second = await call.control.record(rig.request("RE2", max_length=1, timeout=0))
    assert second.end is RecordEnd.MAX_LENGTH and second.digit is None
    assert 1.0 <= wav_seconds(rig.request("RE2").path) <= 2.02


async def test_gotcha_only_received_dtmf_ends_a_record(rig: Rig) -> None:
    """§8.8: a '#' the channel sends outwards does not stop the record, a received '5' that is
    not a terminator does not either; silence does."""
    call = await rig.call()
    plan = RecordPlan(talk_s=2, keys=(Key(0.5, "#", "send"), Key(1.0, "5", "recv")))
    result = await record(rig, call, plan, finish_on_key="#", timeout=1)
    assert result.end is RecordEnd.SILENCE
    assert call.fake.peer_dtmf == ["#"]


async def test_gotcha_default_terminator_is_star(rig: Rig) -> None:
    """§8.8: with playback_terminators unset FreeSWITCH stops on '*'. finishOnKey="" must mean
    no key at all."""
    call = await rig.call()
    plan = RecordPlan(talk_s=2, keys=(Key(0.5, "*"),))
    result = await record(rig, call, plan, finish_on_key="", timeout=1)
    assert result.end is RecordEnd.SILENCE
    assert call.fake.channel.get_var("playback_terminators") == "none"


async def test_gotcha_terminators_do_not_cut_prompts(rig: Rig) -> None:
    """playback_terminators stays on the channel after a <Record finishOnKey="#">; a '#' during
    the next <Say> must not cut it (Twilio does not)."""
    call = await rig.call()
    await record(rig, call, RecordPlan(talk_s=3, keys=(Key(0.5, "#"),)), finish_on_key="#")
    prompt = write_prompt(rig.spool / "prompts" / "say" / "bye.wav", 2.0)
    playing = asyncio.ensure_future(call.control.play(prompt))
    await next_app(call.fake, "playback")
    call.fake.press("#")
    await asyncio.wait_for(playing, 10)
    last = call.fake.runs("playback")[-1]
    assert last.interrupted is None and last.played_s == pytest.approx(2.0, abs=0.05)


async def test_gotcha_paths_are_absolute_in_the_pbx_view(rig: Rig) -> None:
    """§8.1: a relative path would land under sound_prefix; every path sent is absolute and
    mapped to FreeSWITCH's view of the spool."""
    call = await rig.call()
    await record(rig, call, RecordPlan(talk_s=3, keys=(Key(0.5, "1"),)))
    args = [run.arg.split(" ")[0] for run in call.fake.log if run.app in ("playback", "record")]
    assert args and all(arg.startswith(f"{PBX_SPOOL}/") for arg in args)
    assert not (rig.fs.sound_prefix / "recordings").exists()
    assert rig.request().path.exists()


async def test_gotcha_silence_only_leaves_an_empty_wav(rig: Rig) -> None:
    """§8.9: a caller who sends only comfort noise leaves a 44-byte WAV (record_ms 0)."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=0, media=False), timeout=2)
    assert result.end is RecordEnd.SILENCE and "record_ms=0" in result.detail
    assert rig.request().path.stat().st_size == 44


async def test_spoofed_caller_id_end_to_end(rig: Rig) -> None:
    """Issue 4's regression through the driver: the forged Unique-ID stays inside the name."""
    name = "Bob\nUnique-ID: spoofed"
    call = await rig.call(caller_name=name)
    assert call.incoming.pbx_call_id == call.fake.uuid
    assert call.incoming.caller_name == name
    await call.control.answer()  # commands go to the real channel (the server checks)
    assert call.fake.channel.answer_state == "answered"


# --- connections ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def started_rig(
    tmp_path: Path, *, stop_driver: bool = True, scale: float = 0.02, **settings: object
) -> AsyncIterator[Rig]:
    fs = fake_fs(tmp_path, scale=scale)
    await fs.start()
    driver = FreeSwitchDriver(settings_for(fs, tmp_path / "spool", **settings))
    rig = Rig(fs, driver, tmp_path / "spool")

    async def on_call(incoming: IncomingCall) -> None:
        release = asyncio.Event()
        await rig.calls.put((incoming, release))
        await release.wait()

    await driver.start(on_call)
    try:
        yield rig
    finally:
        if stop_driver:
            await driver.stop()
        await fs.stop()


async def test_wrong_password(tmp_path: Path) -> None:
    fs = fake_fs(tmp_path, password="secret")
    await fs.start()
    driver = FreeSwitchDriver(settings_for(fs, tmp_path / "spool"))
    with pytest.raises(PbxError, match="password"):
        await driver.start(lambda incoming: asyncio.sleep(0))
    await fs.stop()


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


async def test_api_on_the_inbound_connection(rig: Rig) -> None:
    call = await rig.call()
    assert await rig.driver.api(f"uuid_exists {call.fake.uuid}") == "true"
    with pytest.raises(PbxError):
        await rig.driver.api("status\nevent plain ALL")


async def test_inbound_connection_lost(rig: Rig) -> None:
    """FreeSWITCH drops the inbound connection: the driver reconnects (tests in
    test_freeswitch_reconnect.py); an api command made meanwhile waits for it."""
    rig.fs.drop_inbound()
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
    assert await rig.driver.api("status") == STATUS_BODY
    assert rig.driver.inbound.reconnects == 1
    call = await rig.call()  # calls still work on their own sockets
    await call.control.answer()


async def test_stop_with_a_call_in_progress(tmp_path: Path) -> None:
    async with started_rig(tmp_path, stop_driver=False) as rig:
        call = await rig.call()
        await call.control.answer()
        await asyncio.wait_for(rig.driver.stop(), 10)
        await asyncio.wait_for(call.fake.finished.wait(), 10)
        assert call.control.hung_up.is_set()
        assert call.fake.hangup_by in ("adapter", "socket closed")


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
