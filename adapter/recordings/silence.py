"""Silence in a recording: is it all silence, and the recording without its leading and trailing
silence (``trim="trim-silence"``).

Memory is bounded regardless of the recording's length: silence detection looks at bounded
windows at the head and the tail, and the kept frames are copied in one-second blocks
(`adapter.recordings.media`). Callers run these in a thread.

The scan is pydub's ``detect_leading_silence`` (the level of each `chunk_ms` chunk in dBFS,
pydub's millisecond-to-frame arithmetic, its padding of a short last chunk) computed with
`audioop` over the bytes of one window, so this module imports only the standard library and
`adapter.recordings.media`: the trim is the one pydub made, without pydub's import and copies.
"""

from __future__ import annotations

import audioop
import math
import wave
from pathlib import Path

from adapter.recordings.media import (
    AudioInfo,
    check_distinct,
    copy_frames,
    open_wav,
    read_frames,
)

__all__ = ["SILENCE_THRESHOLD_DBFS", "is_silent", "trim_silence"]

SILENCE_THRESHOLD_DBFS: float = -50.0
"""A chunk (`chunk_ms`, 10 ms by default) whose RMS level is below this (dBFS) is silence.

A quiet telephone line sits far below this: G.711's idle-channel noise and typical comfort noise
measure around -70 to -60 dBFS. Speech measures around -35 to -15 dBFS RMS, and soft speech
rarely drops below -45 dBFS. -50 dBFS sits in the gap between the two, with margin on both
sides; it is also pydub's own default. Twilio does not document its threshold.
"""

_WINDOW_MS = 30_000
"""Longest stretch of audio scanned at once (30 s: 469 KiB at 8 kHz 16-bit mono)."""


def _silence_ceiling(threshold_dbfs: float, sample_width: int) -> float:
    """The RMS amplitude below which a chunk is silent (pydub's dBFS comparison, linearised)."""
    full_scale = float(2 ** (8 * sample_width - 1))
    return full_scale * math.pow(10.0, threshold_dbfs / 20.0)


def _signed(data: bytes, sample_width: int) -> bytes:
    """WAV's 8-bit samples are unsigned; audioop and pydub measure signed samples."""
    return audioop.bias(data, 1, -128) if sample_width == 1 else data


def _ms_to_frames(ms: int, sample_rate: int) -> int:
    return int(ms * sample_rate / 1000)  # pydub's own conversion, so chunk edges agree


def _is_quiet(rms: int, full_scale: float, threshold_dbfs: float) -> bool:
    """pydub's ``segment.dBFS < threshold`` for a chunk of RMS amplitude `rms` (its formula,
    so a level on the threshold is decided as pydub decided it)."""
    return rms == 0 or 20 * math.log(rms / full_scale, 10) < threshold_dbfs


def _leading_silence_ms(
    data: bytes, info: AudioInfo, threshold_dbfs: float, chunk_ms: int
) -> int:
    """pydub's ``detect_leading_silence(segment, threshold_dbfs, chunk_ms)`` of the signed
    frames `data`: milliseconds of silent chunks at its start (its length when all are)."""
    width, frame_width = info.sample_width, info.frame_width
    per_ms = info.sample_rate / 1000.0
    full_scale = 2 ** (8 * width) / 2
    length_ms = round(1000 * ((len(data) // frame_width) / info.sample_rate))
    trim_ms = 0
    while trim_ms < length_ms:
        start = int(trim_ms * per_ms) * frame_width
        end = int(min(trim_ms + chunk_ms, length_ms) * per_ms) * frame_width
        chunk = data[start:end]
        if chunk and len(chunk) < end - start:
            chunk += bytes(end - start - len(chunk))  # pydub pads a short last chunk with 0s
        if not _is_quiet(audioop.rms(chunk, width), full_scale, threshold_dbfs):
            break
        trim_ms += chunk_ms
    return min(trim_ms, length_ms)


class _SilenceScanner:
    """Finds the first and last sound in a WAV, looking at one bounded window at a time."""

    def __init__(
        self, reader: wave.Wave_read, path: Path, info: AudioInfo, threshold: float, chunk_ms: int
    ) -> None:
        self._reader = reader
        self._path = path
        self._info = info
        self._threshold = threshold
        self._chunk_ms = chunk_ms
        self._ceiling = _silence_ceiling(threshold, info.sample_width)
        window_ms = math.ceil(_WINDOW_MS / chunk_ms) * chunk_ms
        self._window = max(1, _ms_to_frames(window_ms, info.sample_rate))

    def _window_data(self, start: int, count: int) -> bytes | None:
        """The window's signed frames, or None when even its peak is below the ceiling."""
        data = _signed(
            read_frames(self._reader, self._path, self._info, start, count),
            self._info.sample_width,
        )
        # Every chunk's RMS is at most the window's peak: a quiet peak means a silent window.
        if audioop.max(data, self._info.sample_width) < self._ceiling:
            return None
        return data

    def _leading_silence(self, data: bytes) -> int:
        ms = _leading_silence_ms(data, self._info, self._threshold, self._chunk_ms)
        return _ms_to_frames(ms, self._info.sample_rate)

    def first_sound(self, start: int, stop: int) -> int | None:
        """Start of the first non-silent chunk in [start, stop), or None if all is silent."""
        pos = start
        while pos < stop:
            count = min(self._window, stop - pos)
            data = self._window_data(pos, count)
            if data is not None:
                silent = self._leading_silence(data)
                if silent < count:
                    return pos + silent
            pos += count
        return None

    def last_sound_end(self, start: int, stop: int) -> int | None:
        """End of the last non-silent chunk in [start, stop), or None if all is silent."""
        pos = stop
        while pos > start:
            count = min(self._window, pos - start)
            data = self._window_data(pos - count, count)
            if data is not None:
                silent = self._leading_silence(audioop.reverse(data, self._info.sample_width))
                if silent < count:
                    return pos - silent
            pos -= count
        return None


def trim_silence(
    src: Path,
    dst: Path,
    *,
    threshold_dbfs: float = SILENCE_THRESHOLD_DBFS,
    chunk_ms: int = 10,
) -> AudioInfo:
    """Write `src` to `dst` without its leading and trailing silence; return dst's info.

    Audio is measured in `chunk_ms` chunks; a chunk whose RMS level is below `threshold_dbfs`
    is silent. Kept audio starts at the first non-silent chunk and ends after the last one,
    so up to one chunk of silence may remain at each edge. Silence inside the recording is
    kept. An all-silent `src` gives a `dst` with 0 frames.

    Memory stays bounded: the head and the tail are searched in windows of at most 30 s
    (stepping further in while a window is entirely silent), and the kept frames are copied in
    one-second blocks. `dst` must not be `src` (ValueError).
    """
    if chunk_ms < 1:
        raise ValueError(f"chunk_ms must be positive, not {chunk_ms}")
    check_distinct(src, dst)
    with open_wav(src) as (reader, info):
        scanner = _SilenceScanner(reader, src, info, threshold_dbfs, chunk_ms)
        start = scanner.first_sound(0, info.frames)
        if start is None:
            start = stop = 0
        else:
            found = scanner.last_sound_end(start, info.frames)
            # The tail's chunks are aligned differently from the head's; a sound shorter than a
            # chunk can fall below the threshold from this side. Keep the chunk the head found.
            head_chunk_end = start + max(1, _ms_to_frames(chunk_ms, info.sample_rate))
            stop = found if found is not None else min(info.frames, head_chunk_end)
        return copy_frames(reader, src, info, dst, start, stop)


def is_silent(path: Path, *, threshold_dbfs: float = SILENCE_THRESHOLD_DBFS) -> bool:
    """True when no 10 ms chunk of the WAV at `path` reaches `threshold_dbfs` (RMS).

    This is exactly when `trim_silence` (with its default `chunk_ms`) would keep 0 frames.
    True for a file with 0 frames. Reads one-second blocks, so memory stays bounded.
    """
    with open_wav(path) as (reader, info):
        ceiling = _silence_ceiling(threshold_dbfs, info.sample_width)
        chunk = max(1, _ms_to_frames(10, info.sample_rate))
        block = chunk * 100
        pos = 0
        while pos < info.frames:
            count = min(block, info.frames - pos)
            data = _signed(read_frames(reader, path, info, pos, count), info.sample_width)
            pos += count
            if audioop.max(data, info.sample_width) < ceiling:
                continue
            step = chunk * info.frame_width
            for offset in range(0, len(data), step):
                if audioop.rms(data[offset : offset + step], info.sample_width) >= ceiling:
                    return False
    return True
