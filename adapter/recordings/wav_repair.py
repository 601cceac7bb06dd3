"""A WAV whose writer died before closing it, made readable: its size fields written.

Asterisk's MixMonitor and FreeSWITCH write the RIFF and ``data`` size fields only when they close
the file (`adapter.recordings.media.wav_is_final`); a PBX killed mid-recording leaves them 0.
When the header is otherwise the canonical 44-byte one PBXs write, the audio after it is whole
frames of PCM, and the file can be rewritten with correct sizes. Used by recovery for files the
PBX never closed. Blocking disk work: callers run it in a thread.
"""

from __future__ import annotations

import logging
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Final

from adapter.recordings import media

__all__ = ["repair_wav_header"]

log = logging.getLogger(__name__)

_CANONICAL_WAV_HEADER: Final = 44


def repair_wav_header(path: Path) -> bool:
    """Give a WAV whose writer died (sizes never written) correct sizes, if its header is the
    canonical 44-byte one PBXs write. True when the file is final afterwards."""
    try:
        with path.open("rb") as f:
            header = f.read(_CANONICAL_WAV_HEADER)
        if (len(header) < _CANONICAL_WAV_HEADER or header[0:4] != b"RIFF"
                or header[12:16] != b"fmt " or header[36:40] != b"data"):
            return False
        channels, rate, _, align, width = struct.unpack("<HIIHH", header[22:36])
        if align == 0:
            return False
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            raw = Path(tmp) / "pcm.raw"
            with path.open("rb") as src, raw.open("wb") as dst:
                src.seek(_CANONICAL_WAV_HEADER)
                shutil.copyfileobj(src, dst)
            fixed = Path(tmp) / "fixed.wav"
            media.raw_to_wav(raw, fixed, channels=channels, sample_rate=rate,
                             sample_width=width // 8)
            fixed.replace(path)
    except (OSError, ValueError, struct.error, media.MediaError) as exc:
        log.error("recovery: %s could not be repaired: %s", path, exc)
        return False
    return media.wav_is_final(path)
