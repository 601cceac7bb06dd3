"""Audio measurements for tests: per-channel tone energy (Goertzel) and loudness."""

from __future__ import annotations

import array
import audioop
import math
import struct
import wave
from pathlib import Path

from adapter.recordings import silence

__all__ = ["channel_samples", "tone_power", "tones_440_1000", "trailing_silence", "write_tone"]


def channel_samples(path: Path, channel: int, start: float = 0.0,
                    length: float | None = None) -> list[int]:
    """16-bit samples of one channel (0-based) between `start` and `start + length` seconds."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        rate, channels = wav.getframerate(), wav.getnchannels()
        wav.setpos(min(int(start * rate), wav.getnframes()))
        count = wav.getnframes() if length is None else int(length * rate)
        data = array.array("h", wav.readframes(count))
    return list(data[channel::channels])


def tone_power(samples: list[int], frequency: float, rate: int = 8000) -> float:
    """Relative power of `frequency` in `samples` (Goertzel), normalised by the sample count."""
    if not samples:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for sample in samples:
        s0 = sample + coeff * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / len(samples) ** 2


def tones_440_1000(path: Path, channel: int, start: float | None = None,
                   length: float = 1.0) -> tuple[float, float]:
    """(440 Hz power, 1000 Hz power) of one channel over `length` seconds from `start`
    (default: the middle of the file). The test callers play 440 Hz; the far side 1000 Hz."""
    with wave.open(str(path), "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()
    at = max(0.0, duration / 2 - length / 2) if start is None else start
    samples = channel_samples(path, channel, start=at, length=length)
    return tone_power(samples, 440), tone_power(samples, 1000)


def trailing_silence(path: Path) -> float:
    """Seconds of silence at the end of the WAV: 10 ms chunks below the adapter's threshold."""
    with wave.open(str(path), "rb") as wav:
        rate, width = wav.getframerate(), wav.getsampwidth()
        data = wav.readframes(wav.getnframes())
    chunk = rate // 100 * width
    ceiling = 32768 * 10 ** (silence.SILENCE_THRESHOLD_DBFS / 20)
    end = len(data)
    while end > 0 and audioop.rms(data[max(0, end - chunk):end], width) < ceiling:
        end -= chunk
    return (len(data) - max(0, end)) / width / rate


def write_tone(path: Path, hz: float, seconds: float) -> Path:
    """A prompt: `hz` for `seconds`, 8 kHz mono 16-bit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(
            struct.pack("<h", round(8000 * math.sin(2 * math.pi * hz * n / 8000)))
            for n in range(int(8000 * seconds))))
    return path
