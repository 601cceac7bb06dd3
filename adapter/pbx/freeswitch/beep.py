"""The beep played before `<Record>` on FreeSWITCH: a WAV file in the shared spool.

A file rather than ``tone_stream://%(250,0,1000)``: it needs no mod_tone_stream, the ``%(…)``
syntax is mis-parsed in some argument positions (lab notes §8, "Other notes"), and the escaping
rules stay one rule (absolute spool paths only).
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import wave
from pathlib import Path

__all__ = ["BEEP_HZ", "BEEP_SECONDS", "beep_samples", "write_beep"]

SAMPLE_RATE = 8000
BEEP_HZ = 1000
BEEP_SECONDS = 0.25
AMPLITUDE = 0.5  # -6 dBFS
RAMP_SECONDS = 0.01  # fade in and out: no click


def beep_samples() -> bytes:
    """8 kHz mono 16-bit little-endian PCM of the beep."""
    count = round(SAMPLE_RATE * BEEP_SECONDS)
    ramp = round(SAMPLE_RATE * RAMP_SECONDS)
    frames = bytearray()
    for n in range(count):
        gain = min(1.0, n / ramp, (count - 1 - n) / ramp)
        value = AMPLITUDE * gain * math.sin(2 * math.pi * BEEP_HZ * n / SAMPLE_RATE)
        frames += struct.pack("<h", round(value * 32767))
    return bytes(frames)


def write_beep(path: Path) -> None:
    """Write the beep WAV at `path` (atomically; an existing identical file is kept)."""
    samples = beep_samples()
    if path.exists() and _same_audio(path, samples):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".beep-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(samples)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _same_audio(path: Path, samples: bytes) -> bool:
    try:
        with wave.open(str(path), "rb") as wav:
            return (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (
                SAMPLE_RATE, 1, 2) and wav.readframes(wav.getnframes()) == samples
    except (OSError, wave.Error, EOFError):
        return False
