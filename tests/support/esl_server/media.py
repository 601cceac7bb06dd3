"""The WAV files FreeSWITCH writes (lab notes §7.2): a recording while it is open (size fields
unset), a ``record`` application's file, a media bug's file from its read and write frames."""

from __future__ import annotations

import array
import functools
import math
import struct
import wave
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: FreeSWITCH writes whole frames


def tone_frame(hz: float, t: float) -> bytes:
    """One 20 ms frame of a sine at `hz`, phase-continuous in call time `t`."""
    first = round(t * SAMPLE_RATE)
    if float(hz).is_integer():  # a whole-Hz sine repeats every SAMPLE_RATE samples
        return _tone_frame_at(hz, first % SAMPLE_RATE)
    return _tone_frame_at(hz, first)


def tone_span(hz: float, t: float, frames: int) -> bytes:
    """`frames` 20 ms frames of the sine from call time `t` on: what `tone_frame` gives frame
    by frame, at once."""
    if not float(hz).is_integer():
        return b"".join(tone_frame(hz, t + n * FRAME_SAMPLES / SAMPLE_RATE)
                        for n in range(frames))
    first = round(t * SAMPLE_RATE) % SAMPLE_RATE
    second = _tone_second(hz)
    size = 2 * FRAME_SAMPLES * frames
    turned = second[2 * first:] + second[: 2 * first]
    return (turned * (size // len(turned) + 1))[:size]


@functools.lru_cache(maxsize=16)
def _tone_second(hz: float) -> bytes:
    """One second of the sine from phase 0 (a whole-Hz sine repeats every second)."""
    return b"".join(_tone_frame_at(hz, n * FRAME_SAMPLES)
                    for n in range(SAMPLE_RATE // FRAME_SAMPLES))


@functools.lru_cache(maxsize=4096)
def _tone_frame_at(hz: float, first: int) -> bytes:
    return array.array("h", (
        round(6000 * math.sin(2 * math.pi * hz * (first + n) / SAMPLE_RATE))
        for n in range(FRAME_SAMPLES))).tobytes()


def write_pcm(path: Path, mode: str, reads: bytes, writes: bytes) -> None:
    """The mono WAV a media bug writes in `mode` (lab notes §7.2): read only, or mixed."""
    read = array.array("h", reads)
    write = array.array("h", writes)
    if mode == "read" or not writes.strip(b"\0"):  # nothing written: the mix is the reads
        frames = read
    else:
        frames = array.array("h", (max(-32768, min(32767, a + b))
                                   for a, b in zip(read, write, strict=True)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames.tobytes())


def write_open_wav(path: Path, channels: int) -> None:
    """The file as FreeSWITCH has it while it records: opened at the start, size fields not
    written until it is closed (so it is not final, `media.wav_is_final`); replaced by the
    whole file when the recording ends."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0, b"WAVE", b"fmt ", 16, 1, channels,
                         SAMPLE_RATE, SAMPLE_RATE * 2 * channels, 2 * channels, 16, b"data", 0)
    path.write_bytes(header)


def write_wav(path: Path, talk_samples: int, quiet_samples: int) -> None:
    """8 kHz mono 16-bit: a 440 Hz "voice" for the talk, then zeros."""
    tone = bytearray()
    for n in range(talk_samples):
        tone += struct.pack("<h", round(6000 * math.sin(2 * math.pi * 440 * n / SAMPLE_RATE)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(tone) + b"\x00\x00" * quiet_samples)
