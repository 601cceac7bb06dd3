"""Tests of adapter.recordings.media on real audio synthesised with the stdlib (and ffmpeg)."""

from __future__ import annotations

import array
import asyncio
import audioop
import json
import math
import random
import struct
import subprocess
import sys
import tracemalloc
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest
from wav_files import read_frames, write_wav

from adapter.errors import AdapterError
from adapter.recordings.media import (
    AudioInfo,
    MediaError,
    copy_wav,
    raw_to_wav,
    wav_info,
    wav_is_final,
)
from adapter.recordings.silence import SILENCE_THRESHOLD_DBFS, is_silent, trim_silence
from adapter.recordings.transcode import encode_mp3, transcode_for_pbx

RATE = 8000
FULL_SCALE = 32768.0
TOLERANCE_S = 0.020

# ------------------------------------------------------------------------------------------
# Synthesis helpers (16-bit signed little-endian mono unless stated)


def _pcm(samples: Sequence[float]) -> bytes:
    clipped = array.array("h", (max(-32768, min(32767, round(s))) for s in samples))
    if sys.byteorder == "big":
        clipped.byteswap()
    return clipped.tobytes()


def _unpack(data: bytes) -> array.array[int]:
    values = array.array("h", data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _amplitude(dbfs: float) -> float:
    return FULL_SCALE * 10 ** (dbfs / 20)


def tone(freq: float, seconds: float, dbfs: float, rate: int = RATE) -> bytes:
    """A sine whose RMS level is `dbfs`."""
    peak = _amplitude(dbfs) * math.sqrt(2)
    n = round(seconds * rate)
    return _pcm([peak * math.sin(2 * math.pi * freq * i / rate) for i in range(n)])


def noise_floor(seconds: float, dbfs: float = -70.0, seed: int = 1, rate: int = RATE) -> bytes:
    """Gaussian noise whose RMS level is about `dbfs` (a quiet line)."""
    rng = random.Random(seed)
    sigma = _amplitude(dbfs)
    return _pcm([rng.gauss(0.0, sigma) for _ in range(round(seconds * rate))])


def speech_like(seconds: float, seed: int = 2, rate: int = RATE) -> bytes:
    """Noise plus a 220 Hz voice-ish tone, amplitude-modulated at a syllable rate (4 Hz).

    The envelope never drops below 0.35, so every 10 ms chunk is well above -50 dBFS.
    """
    rng = random.Random(seed)
    n = round(seconds * rate)
    out = []
    for i in range(n):
        t = i / rate
        envelope = 0.675 + 0.325 * math.sin(2 * math.pi * 4 * t)
        voice = 0.6 * math.sin(2 * math.pi * 220 * t) + 0.4 * rng.gauss(0.0, 1.0)
        out.append(envelope * voice * _amplitude(-18.0))
    return _pcm(out)


def dbfs(data: bytes, width: int = 2) -> float:
    rms = audioop.rms(data, width)
    return -math.inf if rms == 0 else 20 * math.log10(rms / float(2 ** (8 * width - 1)))


def goertzel_power(samples: Sequence[int], freq: float, rate: int) -> float:
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dominant_frequency(samples: Sequence[int], rate: int) -> int:
    return max(range(200, 3001, 20), key=lambda f: goertzel_power(samples, f, rate))


def ffprobe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-of", "json",
            "-show_entries", "format=duration:stream=codec_name,sample_rate,channels",
            str(path),
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    probe = json.loads(out)
    stream = probe["streams"][0]
    return {
        "duration": float(probe["format"]["duration"]),
        "codec": stream["codec_name"],
        "rate": int(stream["sample_rate"]),
        "channels": int(stream["channels"]),
    }


def decoded_duration(path: Path, rate: int = RATE) -> float:
    """Seconds of audio a (gapless-aware) decoder produces; fails on any decoding error.

    For MP3 this differs from ffprobe's container duration, which also counts the LAME
    encoder delay and padding that decoders drop (about 0.16 s at 8 kHz).
    """
    result = subprocess.run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path),
            "-ac", "1", "-ar", str(rate), "-f", "s16le", "-",
        ],
        capture_output=True, check=True,
    )  # fmt: skip
    assert result.stderr == b""
    return len(result.stdout) / 2 / rate


def listing(folder: Path) -> list[str]:
    """Names in `folder`: shows leftover temporary files."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """1.5 s of -70 dBFS line noise, 3 s of speech-like sound, 2 s of line noise."""
    data = noise_floor(1.5, seed=3) + speech_like(3.0) + noise_floor(2.0, seed=4)
    return write_wav(tmp_path / "recording.wav", data)


# ------------------------------------------------------------------------------------------
# wav_info / wav_is_final


def test_wav_info_reports_shape_and_duration(recording: Path) -> None:
    info = wav_info(recording)
    assert info == AudioInfo(channels=1, sample_rate=8000, sample_width=2, frames=52000)
    assert info.duration == pytest.approx(6.5)


def test_media_error_is_an_adapter_error() -> None:
    assert issubclass(MediaError, AdapterError)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<html>404 Not Found</html>" * 4, "not a RIFF/WAVE"),
        (b"", "too short"),
    ],
)
def test_wav_info_rejects_non_wav(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=reason):
        wav_info(path)


def test_wav_info_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read"):
        wav_info(tmp_path / "missing.wav")


def test_wav_info_rejects_float_wav(tmp_path: Path) -> None:
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "float.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert wav_is_final(path)  # complete, just not integer PCM
    with pytest.raises(MediaError, match="not integer PCM"):
        wav_info(path)


def _set_sizes(path: Path, riff: int, data: int) -> None:
    raw = bytearray(path.read_bytes())
    assert raw[36:40] == b"data"
    raw[4:8] = struct.pack("<I", riff)
    raw[40:44] = struct.pack("<I", data)
    path.write_bytes(bytes(raw))


def test_wav_is_final_false_while_mixmonitor_writes_then_true(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "mixmonitor.wav", speech_like(1.0))
    size = path.stat().st_size
    _set_sizes(path, 0, 0)  # what MixMonitor leaves until it closes the file
    assert not wav_is_final(path)
    with pytest.raises(MediaError, match="not closed"):
        wav_info(path)
    _set_sizes(path, size - 8, size - 44)  # what it writes on close
    assert wav_is_final(path)
    assert wav_info(path).frames == 8000


def test_wav_is_final_false_when_data_follows_the_declared_end(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "growing.wav", speech_like(0.5))
    assert wav_is_final(path)
    with path.open("ab") as f:
        f.write(speech_like(0.1))
    assert not wav_is_final(path)


def test_wav_is_final_false_for_zero_data_size_followed_by_audio(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "half.wav", bytes(1600))  # digital silence: all zero bytes
    _set_sizes(path, path.stat().st_size - 8, 0)
    assert not wav_is_final(path)


def test_wav_is_final_false_for_truncated_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "cut.wav", speech_like(0.5))
    path.write_bytes(path.read_bytes()[:-100])
    assert not wav_is_final(path)
    with pytest.raises(MediaError, match="header says"):
        wav_info(path)


@pytest.mark.parametrize("content", [None, b"", b"RIFF\0\0"])
def test_wav_is_final_never_raises_for_missing_or_short(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "early.wav"
    if content is not None:
        path.write_bytes(content)
    assert wav_is_final(path) is False


def test_wav_is_final_true_for_empty_but_closed_recording(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", b"")
    assert wav_is_final(path)
    assert wav_info(path).frames == 0


# ------------------------------------------------------------------------------------------
# trim_silence / copy_wav / is_silent


def test_trim_silence_keeps_the_three_seconds_of_sound(recording: Path, tmp_path: Path) -> None:
    dst = tmp_path / "trimmed.wav"
    info = trim_silence(recording, dst)
    assert info.duration == pytest.approx(3.0, abs=TOLERANCE_S)
    assert info == wav_info(dst)
    kept = read_frames(dst)
    # The kept audio is the source's own frames, starting where the sound starts.
    offset = read_frames(recording).find(kept)
    assert offset % 2 == 0
    assert offset / 2 / RATE == pytest.approx(1.5, abs=TOLERANCE_S)
    assert dbfs(kept[:160]) > SILENCE_THRESHOLD_DBFS  # first 10 ms is sound
    assert dbfs(kept[-160:]) > SILENCE_THRESHOLD_DBFS  # last 10 ms is sound


def test_do_not_trim_copy_keeps_everything(recording: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy.wav"
    info = copy_wav(recording, dst)
    assert info == wav_info(recording)
    assert read_frames(dst) == read_frames(recording)


def test_copy_wav_rewrites_a_canonical_header(tmp_path: Path) -> None:
    audio = speech_like(0.5)
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    info_body = b"INFO" + b"ISFT" + struct.pack("<I", 4) + b"pbx\0"
    info_chunk = b"LIST" + struct.pack("<I", len(info_body)) + info_body
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + info_chunk
    body += b"data" + struct.pack("<I", len(audio)) + audio
    src = tmp_path / "with-list.wav"
    src.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert wav_info(src).frames == 4000

    dst = tmp_path / "canonical.wav"
    copy_wav(src, dst)
    raw = dst.read_bytes()
    assert len(raw) == 44 + len(audio)
    assert raw[36:40] == b"data"
    assert raw[44:] == audio


def test_trim_silence_all_silent_gives_zero_frames(tmp_path: Path) -> None:
    src = write_wav(tmp_path / "quiet.wav", noise_floor(3.0, seed=5))
    dst = tmp_path / "trimmed.wav"
    info = trim_silence(src, dst)
    assert info.frames == 0
    assert wav_info(dst).frames == 0
    assert wav_is_final(dst)


def test_trim_silence_steps_past_a_window_of_silence(tmp_path: Path) -> None:
    # 40 s of line noise is longer than the 30 s window, at both ends.
    floor = noise_floor(1.0, seed=6)
    data = floor * 40 + speech_like(1.0) + floor * 35
    src = write_wav(tmp_path / "long-gap.wav", data)
    info = trim_silence(src, tmp_path / "trimmed.wav")
    assert info.duration == pytest.approx(1.0, abs=TOLERANCE_S)
    offset = data.find(read_frames(tmp_path / "trimmed.wav"))
    assert offset / 2 / RATE == pytest.approx(40.0, abs=TOLERANCE_S)


def test_trim_silence_two_channels(tmp_path: Path) -> None:
    silence = noise_floor(3.0, seed=7)
    right = noise_floor(1.0, seed=8) + speech_like(1.0) + noise_floor(1.0, seed=9)
    stereo = audioop.add(audioop.tostereo(silence, 2, 1, 0), audioop.tostereo(right, 2, 0, 1), 2)
    src = write_wav(tmp_path / "stereo.wav", stereo, channels=2)
    info = trim_silence(src, tmp_path / "trimmed.wav")
    assert info.channels == 2
    assert info.duration == pytest.approx(1.0, abs=TOLERANCE_S)


def test_trim_silence_handles_unsigned_8_bit(recording: Path, tmp_path: Path) -> None:
    eight_bit = audioop.bias(audioop.lin2lin(read_frames(recording), 2, 1), 1, 128)
    src = write_wav(tmp_path / "u8.wav", eight_bit, width=1)
    info = trim_silence(src, tmp_path / "trimmed.wav")
    assert info.sample_width == 1
    assert info.duration == pytest.approx(3.0, abs=TOLERANCE_S)


def test_trim_silence_threshold_is_respected(tmp_path: Path) -> None:
    data = noise_floor(1.0, seed=10) + tone(440, 1.0, -40.0) + noise_floor(1.0, seed=11)
    src = write_wav(tmp_path / "soft.wav", data)
    assert trim_silence(src, tmp_path / "a.wav").duration == pytest.approx(1.0, abs=TOLERANCE_S)
    assert trim_silence(src, tmp_path / "b.wav", threshold_dbfs=-30.0).frames == 0


def test_trim_silence_refuses_to_overwrite_its_source(recording: Path) -> None:
    before = recording.read_bytes()
    with pytest.raises(ValueError, match="is the source"):
        trim_silence(recording, recording.parent / "." / recording.name)
    assert recording.read_bytes() == before


def test_trim_silence_refuses_unfinished_source(recording: Path, tmp_path: Path) -> None:
    _set_sizes(recording, 0, 0)
    with pytest.raises(MediaError):
        trim_silence(recording, tmp_path / "trimmed.wav")
    assert not (tmp_path / "trimmed.wav").exists()


def test_trim_twenty_minutes_in_bounded_memory(tmp_path: Path) -> None:
    src = tmp_path / "long.wav"
    second_of_speech = speech_like(1.0, seed=12)
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(noise_floor(10.0, seed=13))
        for _ in range(20 * 60 - 20):
            w.writeframes(second_of_speech)
        w.writeframes(noise_floor(10.0, seed=14))
    file_bytes = src.stat().st_size
    assert file_bytes > 18 * 2**20

    tracemalloc.start()
    try:
        info = trim_silence(src, tmp_path / "trimmed.wav")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.duration == pytest.approx(20 * 60 - 20, abs=TOLERANCE_S)
    print(f"trim_silence peak: {peak} bytes for {file_bytes} bytes of WAV")
    assert peak < 3 * 2**20, f"peak {peak} bytes for a {file_bytes}-byte file"


def test_is_silent(recording: Path, tmp_path: Path) -> None:
    assert is_silent(write_wav(tmp_path / "quiet.wav", noise_floor(2.0, seed=15)))
    assert not is_silent(recording)
    assert is_silent(write_wav(tmp_path / "empty.wav", b""))


def test_is_silent_notices_a_short_burst(tmp_path: Path) -> None:
    # 20 ms at -30 dBFS in 10 s: the whole file's RMS is about -57 dBFS, yet it is not silent.
    data = noise_floor(5.0, seed=16) + tone(1000, 0.02, -30.0) + noise_floor(5.0, seed=17)
    assert dbfs(data) < SILENCE_THRESHOLD_DBFS
    path = write_wav(tmp_path / "burst.wav", data)
    assert not is_silent(path)
    assert trim_silence(path, tmp_path / "trimmed.wav").frames > 0


def test_is_silent_threshold(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "soft.wav", tone(440, 1.0, -40.0))
    assert not is_silent(path)
    assert is_silent(path, threshold_dbfs=-30.0)


# ------------------------------------------------------------------------------------------
# raw_to_wav


def test_raw_to_wav_keeps_each_channel(tmp_path: Path) -> None:
    left, right = tone(440, 2.0, -20.0), tone(1000, 2.0, -20.0)
    interleaved = audioop.add(audioop.tostereo(left, 2, 1, 0), audioop.tostereo(right, 2, 0, 1), 2)
    src = tmp_path / "mixmonitor.raw"
    src.write_bytes(interleaved + b"\x01\x02\x03")  # a partial frame at the end is dropped
    dst = tmp_path / "mixmonitor.wav"

    info = raw_to_wav(src, dst, channels=2)

    assert info == AudioInfo(channels=2, sample_rate=8000, sample_width=2, frames=16000)
    frames = read_frames(dst)
    assert frames == interleaved
    half_second = slice(0, 4000)
    left_out = _unpack(audioop.tomono(frames, 2, 1, 0))[half_second]
    right_out = _unpack(audioop.tomono(frames, 2, 0, 1))[half_second]
    assert dominant_frequency(left_out, RATE) == 440
    assert dominant_frequency(right_out, RATE) == 1000


def test_raw_to_wav_missing_source(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read"):
        raw_to_wav(tmp_path / "missing.raw", tmp_path / "x.wav", channels=1)
    assert not (tmp_path / "x.wav").exists()


# ------------------------------------------------------------------------------------------
# ffmpeg: encode_mp3 / transcode_for_pbx


async def test_encode_mp3_decodes_with_the_right_duration(tmp_path: Path) -> None:
    src = write_wav(tmp_path / "rec.wav", speech_like(2.5))
    dst = tmp_path / "rec.mp3"
    await encode_mp3(src, dst)
    probe = await asyncio.to_thread(ffprobe, dst)
    assert (probe["codec"], probe["rate"], probe["channels"]) == ("mp3", 8000, 1)
    assert await asyncio.to_thread(decoded_duration, dst) == pytest.approx(2.5, abs=0.1)
    assert await asyncio.to_thread(listing, tmp_path) == ["rec.mp3", "rec.wav"]


async def test_encode_mp3_corrupt_input(tmp_path: Path) -> None:
    src = tmp_path / "corrupt.wav"
    src.write_bytes(b"RIFF" + random.Random(18).randbytes(4000))
    dst = tmp_path / "out.mp3"
    dst.write_bytes(b"previous")
    with pytest.raises(MediaError, match="ffmpeg exited") as caught:
        await encode_mp3(src, dst)
    assert str(src) in str(caught.value)
    assert dst.read_bytes() == b"previous"  # untouched
    assert await asyncio.to_thread(listing, tmp_path) == ["corrupt.wav", "out.mp3"]


async def test_transcode_stereo_mp3_to_pbx_wav(tmp_path: Path) -> None:
    src = tmp_path / "music.mp3"
    make = [
        "ffmpeg", "-nostdin", "-v", "error",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100:duration=3",
        "-filter_complex", "[0:a][1:a]amerge=inputs=2", "-codec:a", "libmp3lame", str(src),
    ]  # fmt: skip
    await asyncio.to_thread(subprocess.run, make, check=True)
    probe = await asyncio.to_thread(ffprobe, src)
    assert (probe["codec"], probe["rate"], probe["channels"]) == ("mp3", 44100, 2)

    dst = tmp_path / "play.wav"
    info = await transcode_for_pbx(src, dst)

    assert (info.channels, info.sample_rate, info.sample_width) == (1, 8000, 2)
    assert info == wav_info(dst)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert dst.stat().st_size == 44 + info.frames * 2  # plain header, no metadata chunks
    samples = _unpack(read_frames(dst))[4000:8000]
    quiet = goertzel_power(samples, 700, RATE)
    assert goertzel_power(samples, 440, RATE) > 100 * quiet  # both channels are in the mix
    assert goertzel_power(samples, 1000, RATE) > 100 * quiet


async def test_transcode_wav_to_other_rate(tmp_path: Path) -> None:
    src = write_wav(tmp_path / "tts.wav", tone(440, 1.0, -20.0, rate=22050), rate=22050)
    info = await transcode_for_pbx(src, tmp_path / "tts-16k.wav", sample_rate=16000)
    assert (info.sample_rate, info.channels) == (16000, 1)
    assert info.duration == pytest.approx(1.0, abs=0.01)


async def test_transcode_rejects_non_audio(tmp_path: Path) -> None:
    src = tmp_path / "download.mp3"
    src.write_text("<html><body>Access denied</body></html>")
    dst = tmp_path / "play.wav"
    with pytest.raises(MediaError, match="ffmpeg exited"):
        await transcode_for_pbx(src, dst)
    assert await asyncio.to_thread(listing, tmp_path) == ["download.mp3"]
