"""The finaliser (`adapter.recordings.finalise`) on WAVs synthesised with the stdlib: what it
makes of Asterisk's track files and of FreeSWITCH's one stereo file, sample for sample the same
as the split-then-combine it replaces; the real PBXs' files are checked in
test_freeswitch_call_recording.py, test_shared_record.py and test_freeswitch_adapter.py."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
import wav_files
from wav_files import read_frames

from adapter.pbx.base import CallRecordingHandle
from adapter.recordings import layout, media, tracks
from adapter.recordings.finalise import finalise

RATE = 8000


def tone(freq: float, seconds: float, amplitude: int = 8000) -> list[int]:
    return [int(amplitude * math.sin(2 * math.pi * freq * i / RATE))
            for i in range(int(seconds * RATE))]


def write_wav(path: Path, *channels: list[int]) -> Path:
    """A 16-bit WAV with one channel per list (interleaved)."""
    frames = [s for frame in zip(*channels, strict=True) for s in frame]
    return wav_files.write_wav(path, struct.pack(f"<{len(frames)}h", *frames), rate=RATE,
                     channels=len(channels))


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return layout.call_spool(tmp_path / "spool", "CA1")


def stereo_handle(spool: Path, key: str = "RE1", seconds: float = 2.0, *,
                  inbound: bool = True, outbound: bool = True) -> CallRecordingHandle:
    # Loud enough on both channels that the mix clips somewhere: clipping must match too.
    path = write_wav(layout.stereo_file(spool, key), tone(440, seconds, 30000),
                     tone(1000, seconds, 20000))
    return CallRecordingHandle.of_stereo("", path, inbound=inbound, outbound=outbound)


def split(stereo: Path, folder: Path) -> tuple[Path, Path]:
    """The two mono tracks the driver used to split the stereo file into."""
    data = read_frames(stereo)
    samples = list(struct.unpack(f"<{len(data) // 2}h", data))
    return (write_wav(folder / "left.wav", samples[0::2]),
            write_wav(folder / "right.wav", samples[1::2]))


def test_dual_from_stereo_is_the_file_as_is(spool: Path, tmp_path: Path) -> None:
    handle = stereo_handle(spool)
    assert handle.stereo_file is not None
    left, right = split(handle.stereo_file, tmp_path / "old")
    tracks.interleave_wavs(left, right, tmp_path / "old" / "dual.wav")
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([handle], target, 2, trim=False)
    assert info is not None and (info.channels, info.frames) == (2, 2 * RATE)
    assert read_frames(target) == read_frames(tmp_path / "old" / "dual.wav")
    assert not handle.stereo_file.exists()


def test_mono_from_stereo_mixes_its_channels_as_the_tracks_were(
    spool: Path, tmp_path: Path
) -> None:
    handle = stereo_handle(spool)
    assert handle.stereo_file is not None
    left, right = split(handle.stereo_file, tmp_path / "old")
    tracks.mix_wavs(left, right, tmp_path / "old" / "mono.wav")
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([handle], target, 1, trim=False)
    assert info is not None and info.channels == 1
    assert read_frames(target) == read_frames(tmp_path / "old" / "mono.wav")
    assert not list(target.parent.glob(".*"))  # no work file left


@pytest.mark.parametrize("track", ["inbound", "outbound"])
def test_one_track_from_stereo_is_its_channel(spool: Path, tmp_path: Path, track: str) -> None:
    handle = stereo_handle(spool, inbound=track == "inbound", outbound=track == "outbound")
    assert handle.stereo_file is not None
    left, right = split(handle.stereo_file, tmp_path / "old")
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([handle], target, 1, trim=False)
    assert info is not None and info.channels == 1
    assert read_frames(target) == read_frames(left if track == "inbound" else right)


def test_a_discarded_stereo_recording_has_no_audio(spool: Path, tmp_path: Path) -> None:
    """FreeSWITCH removes a recording that got no frame (RECORD_DISCARDED): no file, None."""
    handle = CallRecordingHandle.of_stereo("", layout.stereo_file(spool, "RE1"), inbound=True,
                                           outbound=True)
    target = tmp_path / "media" / "RE1.wav"
    assert finalise([handle], target, 2, trim=False) is None
    assert not target.exists()


def test_segments_of_both_shapes_are_joined_in_order(spool: Path, tmp_path: Path) -> None:
    first = CallRecordingHandle.of_tracks(
        "", write_wav(layout.track_file(spool, "RE1", "inbound"), tone(440, 1.0)),
        write_wav(layout.track_file(spool, "RE1", "outbound"), tone(1000, 1.0)))
    second = stereo_handle(spool, layout.segment_key("RE1", 1), 0.5)
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([first, second], target, 2, trim=False)
    assert info is not None and (info.channels, info.frames) == (2, int(1.5 * RATE))
    assert not any(spool.iterdir()), "the PBX's files are removed"


def test_silence_is_no_recording_and_a_bad_file_raises(spool: Path, tmp_path: Path) -> None:
    target = tmp_path / "media" / "RE1.wav"
    silent = write_wav(layout.record_verb_file(spool.parent.parent, "CA1", "RE1"), [0] * RATE)
    assert finalise([CallRecordingHandle.of_tracks("", silent, None)], target, 1,
                    trim=False) is None
    assert not target.exists() and not silent.exists()
    mono = write_wav(layout.stereo_file(spool, "RE2"), tone(440, 1.0))  # not 2 channels
    with pytest.raises(media.MediaError, match="expected 2 of 16"):
        finalise([CallRecordingHandle.of_stereo("", mono, inbound=True, outbound=True)],
                 target, 2, trim=False)
    assert not target.exists() and not mono.exists()


def test_record_padding_and_trim(spool: Path, tmp_path: Path) -> None:
    """A `<Record>`: one file, `pad` seconds of silence appended to a copy, or trimmed."""
    def recorded() -> CallRecordingHandle:
        path = write_wav(spool / "RE1.wav", [0] * RATE + tone(440, 1.0) + [0] * RATE)
        return CallRecordingHandle.of_tracks("", path, None)

    padded = finalise([recorded()], tmp_path / "padded.wav", 1, trim=False, pad=2)
    assert padded is not None and padded.frames == 5 * RATE
    trimmed = finalise([recorded()], tmp_path / "trimmed.wav", 1, trim=True)
    assert trimmed is not None and trimmed.duration == pytest.approx(1.0, abs=0.02)


def _no_copy(*_: object) -> media.AudioInfo:
    raise AssertionError("the audio was copied a second time")


@pytest.mark.parametrize("channels", [1, 2])
def test_one_segment_of_two_tracks_is_written_straight_to_the_target(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    """No work file and no second copy of the audio: the combined tracks are the target,
    sample for sample what `interleave_wavs` / `mix_wavs` make of the two files."""
    inbound = write_wav(layout.track_file(spool, "RE1", "inbound"), tone(440, 1.0))
    outbound = write_wav(layout.track_file(spool, "RE1", "outbound"), tone(1000, 1.5))
    combine = tracks.interleave_wavs if channels == 2 else tracks.mix_wavs
    expected = combine(inbound, outbound, tmp_path / "expected.wav")
    written: list[Path] = []
    real_combine = combine

    def spy(first: Path, second: Path, dst: Path) -> media.AudioInfo:
        written.append(dst)
        return real_combine(first, second, dst)

    monkeypatch.setattr(tracks, "interleave_wavs" if channels == 2 else "mix_wavs", spy)
    monkeypatch.setattr(media, "copy_wav", _no_copy)
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([CallRecordingHandle.of_tracks("", inbound, outbound)], target, channels,
                    trim=False)
    assert written == [target]
    assert info == expected
    assert read_frames(target) == read_frames(tmp_path / "expected.wav")
    assert not list(target.parent.glob(".*")) and not any(spool.iterdir())


def test_silent_tracks_written_straight_to_the_target_are_no_recording(
    spool: Path, tmp_path: Path
) -> None:
    inbound = write_wav(layout.track_file(spool, "RE1", "inbound"), [0] * RATE)
    outbound = write_wav(layout.track_file(spool, "RE1", "outbound"), [0] * RATE)
    target = tmp_path / "media" / "RE1.wav"
    assert finalise([CallRecordingHandle.of_tracks("", inbound, outbound)], target, 2,
                    trim=False) is None
    assert not target.exists() and not any(spool.iterdir())
    assert not list(target.parent.glob(".*"))
