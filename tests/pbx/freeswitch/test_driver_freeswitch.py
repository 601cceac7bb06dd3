"""The FreeSWITCH driver end to end on a real FreeSWITCH 1.10.12
(tests/labs/freeswitch_driver_rig.py): calls on the outbound socket, every CallControl operation,
each way a `<Record>` ends, and the lab notes' gotchas (lab notes §8), one test each. What
FreeSWITCH did is read from its own events; what the caller heard or said is real audio on loopback
legs (docker/freeswitch/conf/ dialplan/lab.xml).

What a real switch cannot be made to do on demand (a refused ACL, the order of a disconnect
notice against lingering events) stays on the ESL test server:
tests/pbx/freeswitch/test_faults_freeswitch.py.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audio_checks import channel_samples, tone_power
from esl_server.plans import Key, RecordPlan
from freeswitch_driver_rig import (
    FROM,
    TO,
    DriverCall,
    DriverRig,
    driver_rig,
    settings_for,
    wav_seconds,
    write_prompt,
)
from freeswitch_lab import FreeSwitchStack

from adapter.pbx.base import CallGone, PbxError, RecordEnd, RecordResult, UtteranceRequest
from adapter.pbx.freeswitch import FreeSwitchDriver
from adapter.pbx.freeswitch.beep import BEEP_SECONDS
from adapter.pbx.freeswitch.mapping import BEEP_FILE


@pytest.fixture
async def rig(freeswitch_real: FreeSwitchStack) -> AsyncIterator[DriverRig]:
    async with driver_rig(freeswitch_real) as rig:
        yield rig


# --- the call ---------------------------------------------------------------------------------


async def test_incoming_call(rig: DriverRig) -> None:
    call = await rig.call()
    assert (call.incoming.to, call.incoming.from_, call.incoming.caller_name) == (
        TO, FROM, "Alice")
    assert call.uuid != call.caller.uuid
    assert "1.10.12" in rig.driver.version
    # Nothing ran on the adapter's leg but the dialplan's socket application.
    host, port = rig.fs.stack.socket_address
    assert await rig.apps(call.uuid) == [("socket", f"{host}:{port} async full")]


async def test_answer_play_pause_digits_hangup(rig: DriverRig) -> None:
    call = await rig.call()
    ctl = call.control
    prompt = write_prompt(rig.spool / "prompts" / "say" / "hello.wav", 1.5)
    await ctl.answer()
    await ctl.play(prompt)
    await ctl.pause(2)
    await ctl.send_digits("12w#")
    pbx_prompt = rig.driver.settings.spool.to_pbx(prompt)
    assert await rig.apps(call.uuid, completed=True) == [
        ("answer", ""),
        ("set", "playback_terminators=none"),
        ("playback", str(pbx_prompt)),
        ("sleep", "2000"),
        ("send_dtmf", "12w#"),
    ]
    played = await rig.wait_app(call.uuid, "playback", completed=True)
    assert played.get("Application-Response") == "FILE PLAYED"  # played to the end
    started = await rig.wait_app(call.uuid, "sleep")
    slept = await rig.wait_app(call.uuid, "sleep", completed=True)
    assert (int(slept.get("Event-Date-Timestamp"))
            - int(started.get("Event-Date-Timestamp"))) >= 2_000_000
    # The caller received the digits (DTMF events on A).
    await rig.fs.wait_event(lambda e: e.name == "DTMF" and e.unique_id == call.caller.uuid
                            and e.get("DTMF-Digit") == "#")
    assert [e.get("DTMF-Digit") for e in rig.fs.seen(
        lambda e: e.name == "DTMF" and e.unique_id == call.caller.uuid)] == ["1", "2", "#"]

    await ctl.hangup()
    ended = await rig.wait_hangup(call.uuid)
    assert ended.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert ctl.hung_up.is_set()
    with pytest.raises(CallGone):
        await ctl.play(prompt)
    await ctl.hangup()  # a no-op now


async def test_caller_hangs_up_while_idle(rig: DriverRig) -> None:
    call = await rig.call()
    call.caller.caller_hangup()
    await asyncio.wait_for(call.control.hung_up.wait(), 10)
    with pytest.raises(CallGone):
        await call.control.answer()


async def test_caller_hangs_up_during_playback(rig: DriverRig) -> None:
    call = await rig.call()
    prompt = write_prompt(rig.spool / "prompts" / "long.wav", 30)
    await call.control.answer()
    playing = asyncio.ensure_future(call.control.play(prompt))
    await rig.wait_app(call.uuid, "playback")
    call.caller.caller_hangup()
    with pytest.raises(CallGone):
        await asyncio.wait_for(playing, 10)


async def test_terminate_while_an_application_runs(rig: DriverRig) -> None:
    """REST "end the call": uuid_kill on the inbound connection, not queued behind playback."""
    call = await rig.call()
    prompt = write_prompt(rig.spool / "prompts" / "long.wav", 30)
    await call.control.answer()
    playing = asyncio.ensure_future(call.control.play(prompt))
    await rig.wait_app(call.uuid, "playback")
    await call.control.terminate()
    with pytest.raises(CallGone):
        await asyncio.wait_for(playing, 10)
    ended = await rig.wait_hangup(call.uuid)
    assert ended.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert f"uuid_kill {call.uuid} NORMAL_CLEARING" in await rig.fs.api_commands_so_far()
    await call.control.terminate()  # a no-op once gone


async def test_missing_prompt_is_an_error(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    with pytest.raises(PbxError, match="FILE NOT FOUND"):
        await call.control.play(rig.spool / "prompts" / "missing.wav")


async def test_pause_before_answer_does_not_answer(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.pause(1)
    slept = await rig.wait_app(call.uuid, "sleep", completed=True)
    assert slept.get("Answer-State") != "answered"
    await rig.fs.sync()
    assert not rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER" and e.unique_id == call.uuid)


# --- <Record> ---------------------------------------------------------------------------------


async def record(rig: DriverRig, call: DriverCall, plan: RecordPlan,
                 **request: object) -> RecordResult:
    call.caller.plan_record(plan)
    await call.control.answer()
    return await call.control.record(rig.request(**request))  # type: ignore[arg-type]


async def test_record_ended_by_key(rig: DriverRig) -> None:
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=3, keys=(Key(1.5, "#"),)))
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "#")
    file = rig.request().path
    assert wav_seconds(file) == pytest.approx(1.5, abs=0.3)
    pbx_file = rig.driver.settings.spool.to_pbx(file)
    beep_file = rig.driver.settings.spool.pbx / BEEP_FILE
    assert await rig.apps(call.uuid, completed=True) == [
        ("answer", ""),
        ("set", "playback_terminators=none"),  # the beep is not cut by a key
        ("playback", str(beep_file)),
        ("set", "playback_terminators=1234567890*#"),
        ("record", f"{pbx_file} 30 200 5"),
    ]
    beep = await rig.wait_app(call.uuid, "playback", completed=True)
    assert beep.get("Application-Response") == "FILE PLAYED"


async def test_record_ended_by_silence(rig: DriverRig) -> None:
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=1.0), timeout=2)
    assert result.end is RecordEnd.SILENCE
    # The record application keeps the silence that ended it (no rewind, unlike Asterisk).
    assert wav_seconds(rig.request().path) == pytest.approx(3.0, abs=0.3)


async def test_record_utterance_ends_on_silence_and_no_key_ends_it(rig: DriverRig) -> None:
    """`<Gather input="speech">`: no beep, no terminators (a key does not end it), the silence
    that ends it, maxSpeechTime as the limit."""
    call = await rig.call()
    call.caller.plan_record(RecordPlan(talk_s=2.0, keys=(Key(1.0, "5"),)))
    await call.control.answer()
    path = rig.request().path.with_name("utterance-1.wav")
    result = await call.control.record_utterance(
        UtteranceRequest(path, silence=1, max_length=60, keys=""))
    assert result.end is RecordEnd.SILENCE
    assert wav_seconds(path) == pytest.approx(3.0, abs=0.4)  # 2 s of talk, then 1 s
    assert await rig.apps(call.uuid, completed=True) == [
        ("answer", ""),
        ("set", "playback_terminators=none"),
        ("record", f"{rig.driver.settings.spool.to_pbx(path)} 60 200 1"),
    ]


async def test_record_utterance_ends_on_any_key_for_dtmf_speech(rig: DriverRig) -> None:
    call = await rig.call()
    call.caller.plan_record(RecordPlan(talk_s=3.0, keys=(Key(1.0, "7"),)))
    await call.control.answer()
    path = rig.request().path.with_name("utterance-2.wav")
    result = await call.control.record_utterance(
        UtteranceRequest(path, silence=2, max_length=60, keys="0123456789*#"))
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "7")


async def test_record_ended_by_max_length_whole_seconds(rig: DriverRig) -> None:
    """The record application's limit is FreeSWITCH's whole-second epoch timer: maxLength N
    lasts between N and N+1 seconds (lab notes §8.4)."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=60), max_length=2, timeout=0)
    assert result.end is RecordEnd.MAX_LENGTH
    assert 2.0 <= wav_seconds(rig.request().path) <= 3.1
    assert (await rig.apps(call.uuid))[-1][1].endswith("RE1.wav 2")  # no silence arguments


async def test_record_ended_by_hangup(rig: DriverRig) -> None:
    """With linger the RECORD_STOP and the completion still arrive after the hang-up."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=5, hangup_at=1.2))
    assert result.end is RecordEnd.HANGUP
    assert wav_seconds(rig.request().path) == pytest.approx(1.2, abs=0.3)
    assert call.control.hung_up.is_set()
    with pytest.raises(CallGone):
        await call.control.play(rig.spool / BEEP_FILE)


async def test_a_key_during_the_beep_does_not_cut_it(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    call.caller.plan_record(RecordPlan(talk_s=1.0))
    recording = asyncio.ensure_future(call.control.record(rig.request(timeout=1)))
    await rig.wait_app(call.uuid, "playback")
    call.caller.press("#")
    result = await asyncio.wait_for(recording, 15)
    beep = await rig.wait_app(call.uuid, "playback", completed=True)
    assert beep.get("Application-Response") == "FILE PLAYED"  # not cut
    assert result.end is RecordEnd.SILENCE  # the '#' went to the beep, not the record


async def test_hangup_during_the_beep(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    recording = asyncio.ensure_future(call.control.record(rig.request()))
    run = await rig.wait_app(call.uuid, "playback")
    assert run.get("Application-Data").endswith(str(BEEP_FILE))
    call.caller.caller_hangup()
    result = await asyncio.wait_for(recording, 10)
    assert result.end is RecordEnd.HANGUP
    assert "record" not in [app for app, _ in await rig.apps(call.uuid)]


async def test_record_after_hangup_raises(rig: DriverRig) -> None:
    call = await rig.call()
    call.caller.caller_hangup()
    await asyncio.wait_for(call.control.hung_up.wait(), 10)
    with pytest.raises(CallGone):
        await call.control.record(rig.request())


# --- the lab notes' gotchas, on the real switch ---------------------------------------------


async def test_gotcha_record_makes_no_folders(rig: DriverRig) -> None:
    """§8.9 corrected: the record application does not create missing folders (uuid_record
    does); the driver makes the call's folder, so the first <Record> of a call works."""
    call = await rig.call()
    assert not (rig.spool / "recordings").exists()
    result = await record(rig, call, RecordPlan(talk_s=1.0), timeout=1)
    assert result.end is RecordEnd.SILENCE
    assert wav_seconds(rig.request().path) > 1.0


async def test_gotcha_record_cannot_open_its_file(rig: DriverRig) -> None:
    """§8.9: the record APPLICATION hangs the call up when it cannot open the file (here a
    folder stands where the file should go): no RECORD_STOP, DESTINATION_OUT_OF_ORDER."""
    call = await rig.call()
    rig.request().path.mkdir(parents=True)
    result = await record(rig, call, RecordPlan(talk_s=1.0))
    assert result.end is RecordEnd.ERROR
    assert "DESTINATION_OUT_OF_ORDER" in result.detail
    ended = await rig.wait_hangup(call.uuid)
    assert ended.get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"
    await asyncio.wait_for(call.control.hung_up.wait(), 10)


async def test_gotcha_stale_record_variables_and_causes(rig: DriverRig) -> None:
    """§8.2-8.3: record_* variables persist from one recording to the next (RECORD_START and
    later events carry the last one's); each result is read from its own RECORD_STOP."""
    call = await rig.call()
    first = await record(rig, call, RecordPlan(talk_s=60), max_length=1, timeout=0)
    assert first.end is RecordEnd.MAX_LENGTH
    call.caller.plan_record(RecordPlan(talk_s=1.0))
    second = await call.control.record(rig.request("RE2", timeout=1, beep=False))
    assert second.end is RecordEnd.SILENCE
    starts = rig.fs.seen(lambda e: e.name == "RECORD_START" and e.unique_id == call.uuid)
    assert len(starts) == 2 and starts[1].variable("record_ms") is not None  # stale


async def test_gotcha_only_received_dtmf_ends_a_record(rig: DriverRig) -> None:
    """§8.8: a digit the adapter's leg *sends* does not end its record; one it receives does."""
    call = await rig.call()
    plan = RecordPlan(talk_s=4, keys=(Key(1.0, "#", direction="send"), Key(2.0, "#")))
    result = await record(rig, call, plan, timeout=0)
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "#")
    assert wav_seconds(rig.request().path) == pytest.approx(2.0, abs=0.3)


async def test_gotcha_default_terminator_is_star(rig: DriverRig) -> None:
    """§8.8: with playback_terminators unset, '*' ends a record; the driver always sets it, so
    finishOnKey='' (none) is not ended by '*'."""
    call = await rig.call()
    plan = RecordPlan(talk_s=3, keys=(Key(1.0, "*"),))
    result = await record(rig, call, plan, finish_on_key="", max_length=2, timeout=0)
    assert result.end is RecordEnd.MAX_LENGTH
    assert ("set", "playback_terminators=none") in await rig.apps(call.uuid)


async def test_gotcha_terminators_do_not_cut_prompts(rig: DriverRig) -> None:
    """A <Record finishOnKey> leaves playback_terminators set on the channel: the next
    prompt must not be cut by a key (the driver resets it to none before playback)."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=1.0), timeout=1)
    assert result.end is RecordEnd.SILENCE
    prompt = write_prompt(rig.spool / "prompts" / "two.wav", 2.0)
    playing = asyncio.ensure_future(call.control.play(prompt))
    await rig.wait_app(call.uuid, "playback")
    call.caller.press("#")
    await asyncio.wait_for(playing, 10)
    played = rig.fs.seen(lambda e: e.name == "CHANNEL_EXECUTE_COMPLETE"
                         and e.unique_id == call.uuid and e.get("Application") == "playback")
    assert played[-1].get("Application-Response") == "FILE PLAYED"
    assert played[-1].variable("playback_terminator_used") in (None, "")


async def test_gotcha_silence_only_leaves_an_empty_wav(rig: DriverRig) -> None:
    """§8.9: a caller who only sends comfort noise (parked) gives a header-only WAV, kept."""
    call = await rig.call()
    result = await record(rig, call, RecordPlan(talk_s=0, media=False), timeout=2)
    assert result.end is RecordEnd.SILENCE
    assert rig.request().path.stat().st_size == 44


async def test_beep_file_is_a_real_beep(rig: DriverRig) -> None:
    """The beep the driver writes plays on the real switch for its length."""
    call = await rig.call()
    await call.control.answer()
    await call.control.play(rig.driver.beep_path)
    played = await rig.wait_app(call.uuid, "playback", completed=True)
    assert played.get("Application-Response") == "FILE PLAYED"
    assert wav_seconds(rig.driver.beep_path) == pytest.approx(BEEP_SECONDS, abs=0.01)


async def test_gotcha_paths_are_absolute_in_the_pbx_view(rig: DriverRig) -> None:
    """§8.1: a relative path would land under sound_prefix; every path sent is absolute and
    mapped to FreeSWITCH's view of the spool."""
    call = await rig.call()
    await record(rig, call, RecordPlan(talk_s=3, keys=(Key(0.5, "1"),)))
    pbx_root = str(rig.driver.settings.spool.pbx)
    args = [data.split(" ")[0] for app, data in await rig.apps(call.uuid)
            if app in ("playback", "record")]
    assert len(args) == 2 and all(arg.startswith(f"{pbx_root}/") for arg in args)
    record_start = await rig.fs.wait_event(
        lambda e: e.name == "RECORD_START" and e.unique_id == call.uuid)
    assert record_start.get("Record-File-Path") == args[1]
    assert rig.request().path.exists()


# --- connections ------------------------------------------------------------------------------


async def test_wrong_password(freeswitch_real: FreeSwitchStack) -> None:
    """FreeSWITCH answers ``-ERR invalid``; the driver says the password was refused."""
    settings = settings_for(freeswitch_real, "rigs/wrong-password", esl_password="not-it")
    driver = FreeSwitchDriver(settings)
    with pytest.raises(PbxError, match="password"):
        await driver.start(lambda incoming: asyncio.sleep(0))


async def test_api_on_the_inbound_connection(rig: DriverRig) -> None:
    call = await rig.call()
    assert (await rig.driver.api(f"uuid_exists {call.uuid}")).strip() == "true"
    with pytest.raises(PbxError):
        await rig.driver.api("status\nevent plain ALL")


async def test_stop_with_a_call_in_progress(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    await asyncio.wait_for(rig.driver.stop(), 10)
    await rig.wait_hangup(call.uuid)
    assert call.control.hung_up.is_set()


async def test_spoofed_caller_id_end_to_end(rig: DriverRig) -> None:
    """Issue 4's regression on a real channel: a caller name holding a line break and a forged
    ``Unique-ID`` header (lab.xml's spoof_NUMBER) stays inside the name; the driver controls
    the real channel, not the forged one."""
    call = await rig.call(to=f"spoof_{TO}", context="lab")
    assert call.incoming.caller_name == "Bob\nUnique-ID: spoofed"
    assert call.incoming.to == TO
    assert call.uuid != "spoofed" and len(call.uuid) == 36
    await call.control.answer()
    answered = await rig.fs.wait_event(
        lambda e: e.name == "CHANNEL_ANSWER" and e.unique_id == call.uuid)
    assert answered.get("Caller-Caller-ID-Name") == "Bob\nUnique-ID: spoofed"


# --- the test caller: speech in, what it hears out --------------------------------------------


def speech_wav(path: Path, text: str) -> Path:
    """`text` spoken by espeak-ng, as an 8 kHz mono 16-bit WAV at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)],
                   check=True, capture_output=True)
    raw.unlink()
    return path


async def test_the_caller_hears_what_the_adapter_plays(rig: DriverRig) -> None:
    """The caller leg records what it hears: the driver's 1 kHz beep, as loud as it was sent."""
    heard = rig.spool / "heard" / "caller.wav"
    assert rig.driver.outbound_address is not None
    caller = rig.fs.place_call(rig.driver.outbound_address, to=TO, from_=FROM,
                               hears_into=heard)
    incoming, release = await asyncio.wait_for(rig.calls.get(), 15)
    await incoming.control.answer()
    await incoming.control.play(rig.driver.beep_path)
    await incoming.control.pause(1)  # the call goes on a moment: the beep is on its way
    await incoming.control.hangup()
    release.set()
    await rig.wait_hangup(caller.uuid)
    await rig.fs.wait_event(lambda e: e.name == "RECORD_STOP" and e.unique_id == caller.uuid)
    duration = wav_seconds(heard)
    samples = channel_samples(heard, 0)
    assert duration >= BEEP_SECONDS
    assert tone_power(samples, 1000) > 50 * tone_power(samples, 440)


async def test_a_caller_who_speaks_is_recorded(rig: DriverRig) -> None:
    """The caller's voice is espeak-ng speech (lab.xml play_file): the recording holds it."""
    voice = speech_wav(rig.spool / "voices" / "speech.wav",
                       "I would like to cancel my appointment on Friday.")
    spoken = wav_seconds(voice)
    assert rig.driver.outbound_address is not None
    caller = rig.fs.place_call(rig.driver.outbound_address, to=TO, from_=FROM, voice=voice)
    incoming, release = await asyncio.wait_for(rig.calls.get(), 15)
    try:
        caller.plan_record(RecordPlan(talk_s=spoken))
        await incoming.control.answer()
        result = await incoming.control.record(rig.request(timeout=2, beep=False))
    finally:
        release.set()
    assert result.end is RecordEnd.SILENCE
    recorded = rig.request().path
    assert wav_seconds(recorded) == pytest.approx(spoken + 2, abs=0.5)
    speech = channel_samples(recorded, 0, start=0.2, length=spoken - 0.4)
    assert max(abs(s) for s in speech) > 3000  # speech, not silence or comfort noise
