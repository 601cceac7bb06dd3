"""Silence in a recording: is it all silence, and the recording without its leading and trailing
silence (``trim="trim-silence"``).

Memory is bounded regardless of the recording's length: silence detection looks at bounded
windows at the head and the tail (pydub sees at most one window at a time), and the kept frames
are copied in one-second blocks (`adapter.recordings.media`). Callers run these in a thread.
"""

from __future__ import annotations

import audioop
import math
import wave
from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

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
"""Longest stretch of audio handed to pydub at once (30 s: 469 KiB at 8 kHz 16-bit mono)."""


def _silence_ceiling(threshold_dbfs: float, sample_width: int) -> float:
    """The RMS amplitude below which a chunk is silent (pydub's dBFS comparison, linearised)."""
    full_scale = float(2 ** (8 * sample_width - 1))
    return full_scale * math.pow(10.0, threshold_dbfs / 20.0)


def _signed(data: bytes, sample_width: int) -> bytes:
    """WAV's 8-bit samples are unsigned; audioop and pydub measure signed samples."""
    return audioop.bias(data, 1, -128) if sample_width == 1 else data


def _ms_to_frames(ms: int, sample_rate: int) -> int:
    return int(ms * sample_rate / 1000)  # pydub's own conversion, so chunk edges agree


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

    def _segment(self, start: int, count: int) -> AudioSegment | None:
        """The window as a pydub segment, or None when even its peak is below the ceiling."""
        data = _signed(
            read_frames(self._reader, self._path, self._info, start, count),
            self._info.sample_width,
        )
        # Every chunk's RMS is at most the window's peak: a quiet peak means a silent window.
        if audioop.max(data, self._info.sample_width) < self._ceiling:
            return None
        return AudioSegment(
            data=data,
            sample_width=self._info.sample_width,
            frame_rate=self._info.sample_rate,
            channels=self._info.channels,
        )

    def _leading_silence(self, segment: AudioSegment) -> int:
        ms = int(detect_leading_silence(segment, self._threshold, self._chunk_ms))
        return _ms_to_frames(ms, self._info.sample_rate)

    def first_sound(self, start: int, stop: int) -> int | None:
        """Start of the first non-silent chunk in [start, stop), or None if all is silent."""
        pos = start
        while pos < stop:
            count = min(self._window, stop - pos)
            segment = self._segment(pos, count)
            if segment is not None:
                silent = self._leading_silence(segment)
                if silent < count:
                    return pos + silent
            pos += count
        return None

    def last_sound_end(self, start: int, stop: int) -> int | None:
        """End of the last non-silent chunk in [start, stop), or None if all is silent."""
        pos = stop
        while pos > start:
            count = min(self._window, pos - start)
            segment = self._segment(pos - count, count)
            if segment is not None:
                silent = self._leading_silence(segment.reverse())
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
