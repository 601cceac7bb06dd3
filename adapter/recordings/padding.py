"""Silence put back at the end of a recording: the part of the silence that ended a `<Record>`
which the PBX cut off and Twilio keeps (``trim="do-not-trim"``).

Asterisk's ``RECORD FILE`` keeps 1 s of the silence that ended it and cuts the rest, an exact
number of samples (`adapter.pbx.asterisk.mapping`). That audio is gone from the file, and by
definition it was below Asterisk's silence threshold; the adapter puts the same length back as
digital silence (zero samples), so the file and RecordingDuration are as long as Twilio's.

Like `adapter.recordings.media`, this streams one-second blocks (bounded memory), writes a
temporary file beside the destination and renames it into place; callers run it in a thread.
"""

from __future__ import annotations

import os
import secrets
import wave
from pathlib import Path

from adapter.recordings.media import AudioInfo, MediaError, wav_info

__all__ = ["copy_wav_with_silence"]


def _silent_frame(info: AudioInfo) -> bytes:
    """One frame of digital silence: 0 for signed PCM, 0x80 for 8-bit WAV (unsigned)."""
    sample = b"\x80" if info.sample_width == 1 else bytes(info.sample_width)
    return sample * info.channels


def copy_wav_with_silence(src: Path, dst: Path, seconds: int) -> AudioInfo:
    """Copy the complete PCM WAV `src` to `dst` with `seconds` of digital silence appended;
    return dst's info. `dst` gets a canonical 44-byte header; it must not be `src`."""
    if seconds < 0:
        raise ValueError(f"cannot append {seconds} s of silence")
    if src.resolve() == dst.resolve():
        raise ValueError(f"destination {dst} is the source file")
    info = wav_info(src)
    block = info.sample_rate
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.tmp")
    try:
        with wave.open(str(src), "rb") as reader, wave.open(str(tmp), "wb") as writer:
            writer.setnchannels(info.channels)
            writer.setsampwidth(info.sample_width)
            writer.setframerate(info.sample_rate)
            writer.setnframes(info.frames + seconds * info.sample_rate)
            copied = 0
            while copied < info.frames:
                data = reader.readframes(min(block, info.frames - copied))
                if not data:
                    raise MediaError(f"{src}: shorter than its header says")
                writer.writeframesraw(data)
                copied += len(data) // info.frame_width
            silence = _silent_frame(info) * block
            for _ in range(seconds):
                writer.writeframesraw(silence)
        os.replace(tmp, dst)
    except (EOFError, wave.Error) as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"{src}: cannot copy: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return wav_info(dst)
