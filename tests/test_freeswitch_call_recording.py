"""`<Start><Recording>` on the FreeSWITCH driver (``uuid_record``) against the ESL test server:
one stereo recording per call recording, split into the mono tracks the interpreter wants;
stop and hang-up wait for RECORD_STOP; mask keeps the time; the lab notes' gotchas (§8.5-8.7).

The caller sends 440 Hz (the channel's read side); prompts the adapter plays are 1000 Hz (the
write side), so each track's spectrum shows where the audio went."""

from __future__ import annotations

import asyncio
import math
import struct
import wave
from pathlib import Path

import pytest
from audio_checks import channel_samples, tone_power
from test_freeswitch_driver import PBX_SPOOL, Rig, next_app, started_rig

from adapter.pbx.base import CallGone, CallRecordingHandle, CallRecordingRequest, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.recordings import media

SCALE = 0.1  # one call second = 100 ms: enough resolution for the timing checks


def write_tone(path: Path, hz: float, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(
            struct.pack("<h", round(8000 * math.sin(2 * math.pi * hz * n / 8000)))
            for n in range(int(8000 * seconds))))
    return path


def request(rig: Rig, key: str = "RE1", *, inbound: bool = True,
            outbound: bool = True) -> CallRecordingRequest:
    return CallRecordingRequest(key=key, directory=rig.spool / "recordings" / "CA1",
                                inbound=inbound, outbound=outbound)


def powers(path: Path, start: float = 0.0, length: float | None = None) -> tuple[float, float]:
    samples = channel_samples(path, 0, start=start, length=length)
    return tone_power(samples, 440), tone_power(samples, 1000)


def seconds(path: Path) -> float:
    return media.wav_info(path).duration


async def test_both_tracks_from_one_stereo_recording(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        ctl = call.control
        await ctl.answer()
        prompt = write_tone(rig.spool / "prompts" / "tone1000.wav", 1000, 3.0)
        playing = asyncio.ensure_future(ctl.play(prompt))
        await next_app(call.fake, "playback")
        handle = await ctl.start_call_recording(request(rig))
        await playing
        await ctl.stop_call_recording(handle)

        stereo = PBX_SPOOL / "recordings" / "CA1" / "RE1-stereo.wav"
        assert handle.pbx_id == str(stereo)
        assert f"api uuid_record {call.fake.uuid} start {stereo} 0 {{RECORD_STEREO=true," \
               "RECORD_STEREO_SWAP=false,RECORD_READ_ONLY=false,RECORD_WRITE_ONLY=false," \
               "RECORD_PRE_BUFFER_FRAMES=0,RECORD_MIN_SEC=0,RECORD_APPEND=false}" \
               in rig.fs.inbound_commands
        assert f"api uuid_record {call.fake.uuid} stop {stereo}" in rig.fs.inbound_commands
        (recording,) = call.fake.finished_recordings
        assert (recording.mode, recording.pre_buffer_frames, recording.lag_s) == ("stereo", 0, 0)

        assert handle.inbound_file is not None and handle.outbound_file is not None
        assert handle.inbound_file.name == "RE1-inbound.wav"
        for track in handle.files:
            info = media.wav_info(track)
            assert (info.channels, info.sample_rate, info.sample_width) == (1, 8000, 2)
            assert media.wav_is_final(track)
        assert seconds(handle.inbound_file) == seconds(handle.outbound_file)
        assert seconds(handle.inbound_file) == pytest.approx(recording.stopped
                                                             - recording.started, abs=0.03)
        in440, in1000 = powers(handle.inbound_file)
        out440, out1000 = powers(handle.outbound_file)
        assert in440 > 20 * in1000, "inbound = what the caller sends (440 Hz)"
        assert out1000 > 20 * out440, "outbound = what the caller hears (1000 Hz)"
        assert not (rig.spool / "recordings" / "CA1" / "RE1-stereo.wav").exists()


@pytest.mark.parametrize(("inbound", "outbound"), [(True, False), (False, True)])
async def test_one_track(tmp_path: Path, inbound: bool, outbound: bool) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        ctl = call.control
        await ctl.answer()
        handle = await ctl.start_call_recording(request(rig, inbound=inbound,
                                                        outbound=outbound))
        await ctl.play(write_tone(rig.spool / "prompts" / "t.wav", 1000, 1.0))
        await ctl.stop_call_recording(handle)
        (track,) = handle.files
        assert (handle.inbound_file is not None) == inbound
        p440, p1000 = powers(track)
        assert (p440 > 20 * p1000) if inbound else (p1000 > 20 * p440)
        assert [f.name for f in track.parent.iterdir()] == [track.name]


async def test_stop_returns_only_once_record_stop_came(tmp_path: Path) -> None:
    """The api reply (inbound connection) and RECORD_STOP (the call's socket) are separate;
    here RECORD_STOP, and the file, come 0.3 s after '+OK Success'."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig))
        await call.control.pause(1)
        rig.fs.record_stop_delay = 0.3
        await call.control.stop_call_recording(handle)
        assert call.fake.finished_recordings, "stop returned before RECORD_STOP"
        assert all(media.wav_is_final(f) for f in handle.files)


async def test_mute_writes_silence_and_keeps_the_time(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        ctl = call.control
        await ctl.answer()
        handle = await ctl.start_call_recording(request(rig, outbound=False))
        await ctl.pause(1)
        await ctl.mute_call_recording(handle, True)
        await ctl.pause(2)
        await ctl.mute_call_recording(handle, False)
        await ctl.pause(1)
        await ctl.stop_call_recording(handle)
        assert f"api uuid_record {call.fake.uuid} mask {handle.pbx_id}" in rig.fs.inbound_commands
        (recording,) = call.fake.finished_recordings
        (masked,) = recording.masks
        begin, end = masked[0] - recording.started, masked[1] - recording.started
        track = handle.inbound_file
        assert track is not None
        assert seconds(track) == pytest.approx(recording.stopped - recording.started, abs=0.03)
        assert 3.9 <= seconds(track) <= 4.5  # the masked seconds are still in the file
        assert max(map(abs, channel_samples(track, 0, start=begin + 0.05,
                                            length=end - begin - 0.1))) == 0
        assert powers(track, 0.1, begin - 0.2)[0] > 1e5
        assert powers(track, end + 0.1, 0.5)[0] > 1e5


async def test_gotcha_sticky_channel_variables_are_overridden(tmp_path: Path) -> None:
    """§8.7: RECORD_* variables set on the channel with uuid_setvar apply to every later
    recording; ours are set per recording and win, so the tracks are never swapped or lost."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        for name in ("RECORD_STEREO_SWAP", "RECORD_READ_ONLY"):
            assert (await rig.driver.api(f"uuid_setvar {call.fake.uuid} {name} true")
                    ).startswith("+OK")
        handle = await call.control.start_call_recording(request(rig))
        await call.control.play(write_tone(rig.spool / "prompts" / "t.wav", 1000, 1.0))
        await call.control.stop_call_recording(handle)
        assert call.fake.finished_recordings[0].mode == "stereo"
        assert handle.inbound_file is not None and handle.outbound_file is not None
        assert powers(handle.inbound_file)[0] > 20 * powers(handle.inbound_file)[1]
        assert powers(handle.outbound_file)[1] > 20 * powers(handle.outbound_file)[0]


async def test_gotcha_pre_buffer_leak_without_the_variable(tmp_path: Path) -> None:
    """§7.6/§8.5, on the test server: with the default pre-buffer and nothing played, a
    recording loses its last 0.5 s and a mask acts on audio 0.5 s older. With the driver's
    RECORD_PRE_BUFFER_FRAMES=0 the same recording is whole."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        plain = rig.spool / "recordings" / "plain.wav"
        assert (await rig.driver.api(
            f"uuid_record {call.fake.uuid} start {PBX_SPOOL}/recordings/plain.wav 0 "
            "{RECORD_STEREO=true}")).startswith("+OK")
        ours = await call.control.start_call_recording(request(rig))
        await call.control.pause(3)
        assert (await rig.driver.api(
            f"uuid_record {call.fake.uuid} stop {PBX_SPOOL}/recordings/plain.wav")
        ).startswith("+OK")
        await call.control.stop_call_recording(ours)
        leaky, whole = sorted(call.fake.finished_recordings,
                              key=lambda r: not r.path.endswith("plain.wav"))
        assert (leaky.lag_s, whole.lag_s) == (0.5, 0.0)
        assert leaky.stopped is not None and whole.stopped is not None
        assert ours.inbound_file is not None
        assert seconds(plain) == pytest.approx(leaky.stopped - leaky.started - 0.5, abs=0.03)
        assert seconds(ours.inbound_file) == pytest.approx(whole.stopped - whole.started,
                                                           abs=0.03)


async def test_caller_hangup_ends_the_recording(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig, outbound=False))
        await call.control.pause(1)
        sleeping = asyncio.ensure_future(call.control.pause(30))
        await next_app(call.fake, "sleep")
        call.fake.caller_hangup()
        with pytest.raises(CallGone):
            await sleeping
        assert await call.control.call_recording_final(handle, 10)
        assert call.fake.finished_recordings[0].cause == "success-silence"
        assert handle.inbound_file is not None and media.wav_is_final(handle.inbound_file)
        assert seconds(handle.inbound_file) >= 1.0
        await call.control.stop_call_recording(handle)  # already over: no error
        with pytest.raises(CallGone):
            await call.control.start_call_recording(request(rig, "RE2"))


async def test_final_is_false_while_the_recording_runs(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig))
        assert not await call.control.call_recording_final(handle, 0.05)


async def test_two_recordings_at_once_and_a_discarded_one(tmp_path: Path) -> None:
    """Each recording is its own media bug with its own RECORD_STOP (§8.6); a recording
    stopped before a single frame was written is discarded by FreeSWITCH (no file at all),
    which the driver turns into empty tracks (the interpreter then reports it absent)."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        whole = await call.control.start_call_recording(request(rig, "RE1"))
        empty = await call.control.start_call_recording(request(rig, "RE2"))
        await call.control.stop_call_recording(empty)
        await call.control.pause(1)
        await call.control.stop_call_recording(whole)
        discarded = next(r for r in call.fake.finished_recordings if r.discarded)
        assert discarded.cause == "empty-file"
        for track in empty.files:
            assert media.wav_info(track).frames == 0
        assert all(media.wav_info(t).frames > 6000 for t in whole.files)


async def test_start_refused_by_freeswitch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        monkeypatch.setattr(type(rig.fs), "can_write", staticmethod(lambda path: False))
        with pytest.raises(PbxError, match="Cannot record session"):
            await call.control.start_call_recording(request(rig))
        unknown = CallRecordingHandle("/nowhere.wav", None, None)
        with pytest.raises(PbxError, match="no call recording"):
            await call.control.stop_call_recording(unknown)


def test_uuid_record_commands() -> None:
    uuid = "b20481ed-3a19-4708-912f-fc4d3beb6c21"
    path = PBX_SPOOL / "recordings" / "CA1" / "RE1-stereo.wav"
    assert mapping.uuid_record_stop(uuid, path, root=PBX_SPOOL) == (
        f"uuid_record {uuid} stop {path}")
    assert mapping.uuid_record_mask(uuid, path, root=PBX_SPOOL, masked=False) == (
        f"uuid_record {uuid} unmask {path}")
    with pytest.raises(PbxError):  # outside the spool
        mapping.uuid_record_start(uuid, PBX_SPOOL.parent / "elsewhere.wav", root=PBX_SPOOL)
