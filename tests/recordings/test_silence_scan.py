"""The pydub-free silence scan of `adapter.recordings.silence` trims exactly as the previous
implementation did (pydub's ``detect_leading_silence`` on the same 30 s windows), and the module
no longer imports pydub.

The reference below is that previous implementation's window scan, with pydub doing the
measuring; every case compares the frames `trim_silence` keeps with the frames it keeps.
"""

from __future__ import annotations

import audioop
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.silence import detect_leading_silence
from wav_files import read_frames, write_wav

from adapter.recordings.silence import SILENCE_THRESHOLD_DBFS, trim_silence

WINDOW_MS = 30_000


def _ms_to_frames(ms: int, rate: int) -> int:
    return int(ms * rate / 1000)


def _reference_bounds(
    data: bytes, channels: int, width: int, rate: int, threshold: float, chunk_ms: int
) -> tuple[int, int]:
    """[start, stop) kept by the pydub implementation (same windows, same edge rules)."""
    frame_width = channels * width
    frames = len(data) // frame_width
    signed = audioop.bias(data, 1, -128) if width == 1 else data
    window = max(1, _ms_to_frames(math.ceil(WINDOW_MS / chunk_ms) * chunk_ms, rate))

    def segment(start: int, count: int) -> AudioSegment:
        piece = signed[start * frame_width:(start + count) * frame_width]
        return AudioSegment(data=piece, sample_width=width, frame_rate=rate, channels=channels)

    def leading(seg: AudioSegment) -> int:
        return _ms_to_frames(int(detect_leading_silence(seg, threshold, chunk_ms)), rate)

    first = None
    pos = 0
    while pos < frames and first is None:
        count = min(window, frames - pos)
        silent = leading(segment(pos, count))
        if silent < count:
            first = pos + silent
        pos += count
    if first is None:
        return 0, 0
    last = None
    pos = frames
    while pos > first and last is None:
        count = min(window, pos - first)
        silent = leading(segment(pos - count, count).reverse())
        if silent < count:
            last = pos - silent
        pos -= count
    if last is None:
        last = min(frames, first + max(1, _ms_to_frames(chunk_ms, rate)))
    return first, last


def _audio(rng: random.Random, seconds: float, rate: int, channels: int) -> bytes:
    """Stretches of noise at levels around the threshold (some exactly on it), 16-bit."""
    out = bytearray()
    total = int(seconds * rate)
    while len(out) < total * 2 * channels:
        n = rng.randint(1, rate // 2)
        level = rng.choice([0.0, -80.0, -51.0, -50.0, -49.5, -30.0, -10.0])
        amp = 0.0 if level == 0.0 else 32768 * 10 ** (level / 20) * math.sqrt(3)
        samples = [int(rng.uniform(-amp, amp)) for _ in range(n * channels)]
        out += b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True)
                        for s in samples)
    return bytes(out[: total * 2 * channels])


CASES = [
    # seed, seconds, rate, channels, width, threshold, chunk_ms, leading/trailing silence (s)
    (1, 3.0, 8000, 1, 2, SILENCE_THRESHOLD_DBFS, 10, 0.0),
    (2, 2.5, 8000, 2, 2, SILENCE_THRESHOLD_DBFS, 10, 0.3),
    (3, 2.0, 11025, 1, 2, SILENCE_THRESHOLD_DBFS, 7, 0.2),
    (4, 2.0, 8000, 1, 1, SILENCE_THRESHOLD_DBFS, 10, 0.1),
    (5, 1.0, 16000, 1, 2, -35.0, 13, 0.0),
    (6, 1.5, 44100, 2, 2, SILENCE_THRESHOLD_DBFS, 10, 0.05),
    (7, 2.0, 8000, 1, 2, SILENCE_THRESHOLD_DBFS, 10, 34.0),  # past a 30 s window each side
    (8, 0.0, 8000, 1, 2, SILENCE_THRESHOLD_DBFS, 10, 1.0),  # all silent
]


@pytest.mark.parametrize(("seed", "seconds", "rate", "channels", "width", "threshold",
                          "chunk_ms", "pad"), CASES)
def test_trim_equals_the_pydub_implementation(
    tmp_path: Path, seed: int, seconds: float, rate: int, channels: int, width: int,
    threshold: float, chunk_ms: int, pad: float,
) -> None:
    rng = random.Random(seed)
    quiet = bytes(int(pad * rate) * 2 * channels)
    data = quiet + _audio(rng, seconds, rate, channels) + quiet
    if width == 1:
        data = audioop.bias(audioop.lin2lin(data, 2, 1), 1, 128)
    src = write_wav(tmp_path / "in.wav", data, channels=channels, width=width, rate=rate)
    start, stop = _reference_bounds(data, channels, width, rate, threshold, chunk_ms)
    info = trim_silence(src, tmp_path / "out.wav", threshold_dbfs=threshold, chunk_ms=chunk_ms)
    frame_width = channels * width
    assert info.frames == stop - start
    assert read_frames(tmp_path / "out.wav") == data[start * frame_width:stop * frame_width]
    if seconds:
        assert 0 < info.frames < len(data) // frame_width or pad == 0


def test_a_chunk_exactly_on_the_threshold_is_decided_as_pydub_decides_it(tmp_path: Path) -> None:
    """Square waves whose RMS sits around -50 dBFS (103.6), in a window whose peak (a click
    1 s later) is loud, so every chunk's level is measured."""
    click = bytes(158) + (20000).to_bytes(2, "little", signed=True)
    for amplitude in range(96, 106):
        chunk = (amplitude.to_bytes(2, "little", signed=True)
                 + (-amplitude).to_bytes(2, "little", signed=True)) * 40
        data = bytes(1600) + chunk * 3 + bytes(16000) + click + bytes(1600)
        src = write_wav(tmp_path / f"sq{amplitude}.wav", data, channels=1, width=2, rate=8000)
        start, stop = _reference_bounds(data, 1, 2, 8000, SILENCE_THRESHOLD_DBFS, 10)
        info = trim_silence(src, tmp_path / f"out{amplitude}.wav")
        assert info.frames == stop - start, amplitude
        assert (start == 800) == (amplitude >= 104), amplitude


def test_the_silence_module_does_not_import_pydub() -> None:
    code = ("import sys, adapter.recordings.finalise, adapter.recordings.silence; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydub'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
