"""WAV files for the recordings tests: write PCM frames with a given shape, read them back."""

from __future__ import annotations

import wave
from pathlib import Path


def write_wav(path: Path, data: bytes, *, rate: int = 8000, channels: int = 1,
              width: int = 2) -> Path:
    """`data` (PCM frames) as a WAV at `path`; its folder is made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def read_frames(path: Path) -> bytes:
    """Every PCM frame of the WAV at `path`."""
    with wave.open(str(path), "rb") as r:
        return r.readframes(r.getnframes())
