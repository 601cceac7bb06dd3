"""Split FreeSWITCH's 2-channel call recording into the two mono track files the adapter expects.

With ``RECORD_STEREO=true`` ``uuid_record`` writes one WAV whose left channel is what the channel
*reads* (the audio from the caller) and whose right channel is what it *writes* (the audio to the
caller: prompts, or the dialled party), sample-aligned by construction (lab notes §7.2, §8.7).
The interpreter wants one mono file per track (`CallRecordingHandle.inbound_file` /
``outbound_file``), so the driver splits the file once FreeSWITCH has closed it.

Runs in a worker thread (plain blocking file I/O), in one-second blocks, and writes each output
atomically (a temporary file renamed into place), so a reader never sees half a track.
"""

from __future__ import annotations

import audioop
import contextlib
import os
import tempfile
import wave
from pathlib import Path

from adapter.pbx.base import PbxError

__all__ = ["StereoError", "split_stereo", "write_empty_wav"]

_BLOCK_SECONDS = 1


class StereoError(PbxError):
    """The recording is not the 2-channel 16-bit WAV FreeSWITCH writes with RECORD_STEREO."""


def _atomic_writer(dst: Path, rate: int) -> tuple[wave.Wave_write, Path]:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{dst.stem}-", suffix=".wav", dir=dst.parent)
    os.close(fd)
    writer = wave.open(temp, "wb")  # noqa: SIM115 - closed by the caller
    writer.setnchannels(1)
    writer.setsampwidth(2)
    writer.setframerate(rate)
    return writer, Path(temp)


def write_empty_wav(path: Path, rate: int = 8000) -> None:
    """A header-only mono WAV: what a recording without a single frame amounts to."""
    writer, temp = _atomic_writer(path, rate)
    try:
        writer.close()
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def split_stereo(source: Path, left: Path | None, right: Path | None) -> int:
    """Write channel 1 of `source` to `left` and channel 2 to `right` (either may be None);
    returns the number of frames. The source is left in place."""
    try:
        reader = wave.open(str(source), "rb")  # noqa: SIM115 - closed below
    except (OSError, EOFError, wave.Error) as exc:
        raise StereoError(f"{source}: cannot read the recording: {exc}") from exc
    outputs: list[tuple[wave.Wave_write, Path, Path, tuple[int, int]]] = []
    try:
        if reader.getnchannels() != 2 or reader.getsampwidth() != 2:
            raise StereoError(f"{source}: {reader.getnchannels()} channel(s) of "
                              f"{8 * reader.getsampwidth()} bits, expected 2 of 16")
        rate = reader.getframerate()
        for target, factors in ((left, (1, 0)), (right, (0, 1))):
            if target is not None:
                writer, temp = _atomic_writer(target, rate)
                outputs.append((writer, temp, target, factors))
        frames = 0
        while data := reader.readframes(rate * _BLOCK_SECONDS):
            usable = len(data) - len(data) % 4  # whole stereo frames only
            frames += usable // 4
            for writer, _temp, _target, (lfactor, rfactor) in outputs:
                writer.writeframes(audioop.tomono(data[:usable], 2, lfactor, rfactor))
        for writer, temp, target, _factors in outputs:
            writer.close()
            os.replace(temp, target)
        return frames
    except (OSError, EOFError, wave.Error) as exc:
        raise StereoError(f"{source}: splitting failed: {exc}") from exc
    finally:
        reader.close()
        for writer, temp, _target, _factors in outputs:
            with contextlib.suppress(Exception):
                writer.close()
            temp.unlink(missing_ok=True)
