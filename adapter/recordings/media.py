"""Audio post-processing of PBX recordings, and conversion of media the PBX has to play.

Recordings arrive as PCM WAV (16-bit, usually 8 kHz, mono or 2-channel) written by Asterisk's
MixMonitor, or as headerless interleaved s16le ``.raw`` files (MixMonitor option ``D``).

Memory is bounded regardless of the recording's length: nothing here loads a whole
recording. Silence detection looks at bounded windows at the head and the tail (pydub sees at
most one window at a time), and every copy streams frames in one-second blocks.

The synchronous functions do CPU and disk work; callers run them with ``asyncio.to_thread``.
The ``async`` functions run ffmpeg as a subprocess. Every function that produces a file writes
a temporary file in the destination's folder and renames it into place, so a reader never sees
a half-written destination.
"""

from __future__ import annotations

import asyncio
import audioop
import contextlib
import math
import os
import secrets
import struct
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from adapter.errors import AdapterError

__all__ = [
    "SILENCE_THRESHOLD_DBFS",
    "AudioInfo",
    "MediaError",
    "concat_wavs",
    "copy_wav",
    "encode_mp3",
    "interleave_wavs",
    "is_silent",
    "mix_wavs",
    "raw_to_wav",
    "transcode_for_pbx",
    "trim_silence",
    "wav_info",
    "wav_is_final",
]

SILENCE_THRESHOLD_DBFS: float = -50.0
"""A chunk (`chunk_ms`, 10 ms by default) whose RMS level is below this (dBFS) is silence.

A quiet telephone line sits far below this: G.711's idle-channel noise and typical comfort noise
measure around -70 to -60 dBFS. Speech measures around -35 to -15 dBFS RMS, and soft speech
rarely drops below -45 dBFS. -50 dBFS sits in the gap between the two, with margin on both
sides; it is also pydub's own default. Twilio does not document its threshold.
"""

_WINDOW_MS = 30_000
"""Longest stretch of audio handed to pydub at once (30 s: 469 KiB at 8 kHz 16-bit mono)."""

_BLOCK_SECONDS = 1
"""Frames streamed per read/write when copying."""

_FFMPEG = "ffmpeg"
_STDERR_LIMIT = 2000
_MAX_CHUNKS = 1000
_MAX_FMT_BYTES = 4096
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class MediaError(AdapterError):
    """An audio file is unreadable, invalid, still being written, or could not be converted."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """Shape of a PCM WAV: `sample_width` in bytes, `frames` = samples per channel."""

    channels: int
    sample_rate: int
    sample_width: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def frame_width(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.channels * self.sample_width


# --------------------------------------------------------------------------------------------
# RIFF header parsing


class _UnfinishedError(MediaError):
    """The header's size fields do not match the file (yet): a writer may still be at work."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    ident: bytes
    offset: int  # of the chunk's body
    size: int


def _read_chunks(path: Path) -> tuple[list[_Chunk], bytes]:
    """Walk the RIFF chunk list; return the chunks and the body of the first ``fmt `` chunk.

    Raises `_UnfinishedError` when the size fields are inconsistent with the file's size, and
    `MediaError` when the file is not a RIFF/WAVE file or cannot be read.
    """
    try:
        with path.open("rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12:
                raise _UnfinishedError(f"{path}: {file_size} bytes is too short for a WAV header")
            if head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise MediaError(f"{path}: not a RIFF/WAVE file")
            (riff_size,) = struct.unpack("<I", head[4:8])
            if riff_size == 0:
                raise _UnfinishedError(
                    f"{path}: RIFF size field is 0: the writer has not closed the file"
                )
            riff_end = riff_size + 8
            if riff_end != file_size:
                raise _UnfinishedError(
                    f"{path}: header says {riff_end} bytes but the file has {file_size}"
                )
            chunks: list[_Chunk] = []
            fmt = b""
            pos = 12
            while pos < riff_end:
                if len(chunks) >= _MAX_CHUNKS:
                    raise MediaError(f"{path}: more than {_MAX_CHUNKS} RIFF chunks")
                f.seek(pos)
                header = f.read(8)
                if len(header) < 8:
                    raise _UnfinishedError(f"{path}: truncated chunk header at byte {pos}")
                ident = header[0:4]
                (size,) = struct.unpack("<I", header[4:8])
                body = pos + 8
                if body + size > riff_end:
                    raise _UnfinishedError(
                        f"{path}: chunk {ident!r} claims {size} bytes, "
                        f"only {riff_end - body} remain"
                    )
                if not _is_fourcc(ident):
                    # Audio bytes read as a chunk header: some size field undercounts.
                    raise _UnfinishedError(f"{path}: no chunk header at byte {pos}")
                if ident == b"fmt " and not fmt:
                    if size > _MAX_FMT_BYTES:
                        raise MediaError(f"{path}: fmt chunk of {size} bytes")
                    fmt = f.read(size)
                chunks.append(_Chunk(ident, body, size))
                # Chunks are padded to an even length; tolerate a missing pad after the last.
                pos = body + size + (size & 1)
    except OSError as exc:
        raise MediaError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return chunks, fmt


def _is_fourcc(ident: bytes) -> bool:
    return all(0x20 <= byte <= 0x7E for byte in ident)


def wav_info(path: Path) -> AudioInfo:
    """Shape of the complete PCM WAV at `path`.

    Raises `MediaError` when the file is missing or unreadable, is not an integer-PCM WAV, or
    is not complete (its header's size fields disagree with its size: see `wav_is_final`).
    """
    chunks, fmt = _read_chunks(path)
    idents = [c.ident for c in chunks]
    if b"fmt " not in idents:
        raise MediaError(f"{path}: no fmt chunk")
    if b"data" not in idents:
        raise MediaError(f"{path}: no data chunk")
    if idents.index(b"data") < idents.index(b"fmt "):
        raise MediaError(f"{path}: data chunk before fmt chunk")
    if len(fmt) < 16:
        raise MediaError(f"{path}: fmt chunk of {len(fmt)} bytes is too short")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        raise MediaError(f"{path}: WAVE_FORMAT_EXTENSIBLE is not supported (convert it first)")
    if tag != _WAVE_FORMAT_PCM:
        raise MediaError(f"{path}: format tag 0x{tag:04x} is not integer PCM")
    if bits not in (8, 16, 24, 32):
        raise MediaError(f"{path}: {bits} bits per sample is not supported")
    if channels < 1 or rate < 1:
        raise MediaError(f"{path}: {channels} channels at {rate} Hz")
    width = bits // 8
    if block_align != channels * width:
        raise MediaError(f"{path}: block align {block_align} != {channels} x {width} bytes")
    data = chunks[idents.index(b"data")]
    return AudioInfo(channels, rate, width, data.size // block_align)


def wav_is_final(path: Path) -> bool:
    """True once the writer of the WAV at `path` has closed it.

    Asterisk's MixMonitor writes the RIFF and data size fields as 0 and only fills them in
    when it closes the file, so a file is final when those fields are consistent with the
    file's size: the RIFF size accounts for every byte and the chunks tile it exactly. Never
    raises: a missing, short or non-WAV file is not final.
    """
    try:
        _read_chunks(path)
    except MediaError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Reading and writing frames


@contextlib.contextmanager
def _wav_reader(path: Path) -> Iterator[tuple[wave.Wave_read, AudioInfo]]:
    info = wav_info(path)
    try:
        reader = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the `with` below
    except (OSError, EOFError, wave.Error) as exc:
        raise MediaError(f"{path}: cannot open: {exc}") from exc
    with reader:
        if reader.getnframes() != info.frames:
            raise MediaError(f"{path}: changed while it was being opened")
        yield reader, info


def _read_frames(
    reader: wave.Wave_read, path: Path, info: AudioInfo, start: int, count: int
) -> bytes:
    reader.setpos(start)
    data = reader.readframes(count)
    if len(data) != count * info.frame_width:
        raise MediaError(f"{path}: shorter than its header says (changed while reading?)")
    return data


def _temp_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.tmp")


@contextlib.contextmanager
def _atomic_file(dst: Path) -> Iterator[Path]:
    """A temporary path next to `dst`, renamed onto `dst` when the block succeeds."""
    tmp = _temp_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _wav_writer(dst: Path, shape: AudioInfo) -> Iterator[wave.Wave_write]:
    """A WAV writer with `shape`'s format and frame count, published atomically at `dst`."""
    with _atomic_file(dst) as tmp, wave.open(str(tmp), "wb") as writer:
        writer.setnchannels(shape.channels)
        writer.setsampwidth(shape.sample_width)
        writer.setframerate(shape.sample_rate)
        writer.setnframes(shape.frames)
        yield writer


def _copy_range(
    reader: wave.Wave_read, src: Path, info: AudioInfo, dst: Path, start: int, stop: int
) -> AudioInfo:
    """Write frames [start, stop) of `src` to `dst` in one-second blocks; return dst's info."""
    shape = AudioInfo(info.channels, info.sample_rate, info.sample_width, stop - start)
    block = max(1, info.sample_rate * _BLOCK_SECONDS)
    with _wav_writer(dst, shape) as writer:
        pos = start
        while pos < stop:
            count = min(block, stop - pos)
            writer.writeframesraw(_read_frames(reader, src, info, pos, count))
            pos += count
    return wav_info(dst)


def copy_wav(src: Path, dst: Path) -> AudioInfo:
    """Copy the complete PCM WAV `src` to `dst` in one-second blocks; return dst's info.

    `dst` gets a freshly written canonical 44-byte header (``fmt `` and ``data`` chunks only,
    sizes correct), whatever other chunks `src` carried. `dst` must not be `src` (ValueError).
    """
    _check_distinct(src, dst)
    with _wav_reader(src) as (reader, info):
        return _copy_range(reader, src, info, dst, 0, info.frames)


def raw_to_wav(
    src: Path, dst: Path, *, channels: int, sample_rate: int = 8000, sample_width: int = 2
) -> AudioInfo:
    """Wrap headerless interleaved signed little-endian PCM (s16le by default) in a WAV.

    This is what MixMonitor's option ``D`` writes. A trailing partial frame (a writer stopped
    mid-frame) is dropped. Copies in one-second blocks; returns dst's info.
    """
    if channels < 1:
        raise ValueError(f"channels must be at least 1, not {channels}")
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    if sample_width not in (2, 3, 4):
        raise ValueError(f"sample_width must be 2, 3 or 4 bytes, not {sample_width}")
    _check_distinct(src, dst)
    frame_width = channels * sample_width
    try:
        raw = src.open("rb")
    except OSError as exc:
        raise MediaError(f"{src}: cannot read: {exc.strerror or exc}") from exc
    with raw:
        frames = os.fstat(raw.fileno()).st_size // frame_width
        shape = AudioInfo(channels, sample_rate, sample_width, frames)
        block = sample_rate * _BLOCK_SECONDS * frame_width
        remaining = frames * frame_width
        with _wav_writer(dst, shape) as writer:
            while remaining:
                data = raw.read(min(block, remaining))
                if not data:
                    raise MediaError(f"{src}: shrank while it was being read")
                writer.writeframesraw(data)
                remaining -= len(data)
    return wav_info(dst)


def _combine_tracks(
    first: Path, second: Path, dst: Path, channels: int,
    combine: Callable[[bytes, bytes, int], bytes],
) -> AudioInfo:
    """Two mono WAVs of one format, block by block (the shorter padded with silence), each
    pair of blocks turned into `dst`'s frames by `combine(a, b, sample_width)`."""
    _check_distinct(first, dst)
    _check_distinct(second, dst)
    with _wav_reader(first) as (freader, finfo), _wav_reader(second) as (sreader, sinfo):
        if (finfo.channels, sinfo.channels) != (1, 1) or (
            finfo.sample_rate, finfo.sample_width) != (sinfo.sample_rate, sinfo.sample_width):
            raise MediaError(f"{first} and {second} must be mono WAVs of one format")
        width = finfo.sample_width
        frames = max(finfo.frames, sinfo.frames)
        block = max(1, finfo.sample_rate * _BLOCK_SECONDS)
        with _wav_writer(dst, AudioInfo(channels, finfo.sample_rate, width, frames)) as writer:
            for pos in range(0, frames, block):
                count = min(block, frames - pos)
                pieces = []
                for reader, path, info in ((freader, first, finfo), (sreader, second, sinfo)):
                    have = max(0, min(count, info.frames - pos))
                    data = _read_frames(reader, path, info, pos, have) if have else b""
                    pieces.append(data + b"\x00" * ((count - have) * width))
                writer.writeframesraw(combine(pieces[0], pieces[1], width))
    return wav_info(dst)


def _interleave(left: bytes, right: bytes, width: int) -> bytes:
    return audioop.add(audioop.tostereo(left, width, 1, 0),
                       audioop.tostereo(right, width, 0, 1), width)


def interleave_wavs(left: Path, right: Path, dst: Path) -> AudioInfo:
    """Two mono WAVs of one format → one 2-channel WAV (`left` = channel 1), in one-second blocks.

    This is how a dual-channel call recording is made from MixMonitor's ``r()`` (audio from the
    caller) and ``t()`` (audio to the caller) files, which Asterisk keeps the same length. If one
    is shorter, it is padded with silence.
    """
    return _combine_tracks(left, right, dst, 2, _interleave)


def mix_wavs(first: Path, second: Path, dst: Path) -> AudioInfo:
    """Two mono WAVs of one format mixed (summed, clipped) into one mono WAV, in blocks."""
    return _combine_tracks(first, second, dst, 1, audioop.add)


def concat_wavs(sources: list[Path], dst: Path) -> AudioInfo:
    """WAVs of one format, one after the other, into `dst` (one-second blocks).

    How a recording paused with PauseBehavior=skip is put together from its segments.
    """
    if not sources:
        raise ValueError("nothing to concatenate")
    for src in sources:
        _check_distinct(src, dst)
    infos = [wav_info(src) for src in sources]
    shape = infos[0]
    if any((i.channels, i.sample_rate, i.sample_width) !=
           (shape.channels, shape.sample_rate, shape.sample_width) for i in infos):
        raise MediaError("the segments differ in format")
    total = AudioInfo(shape.channels, shape.sample_rate, shape.sample_width,
                      sum(i.frames for i in infos))
    block = max(1, shape.sample_rate * _BLOCK_SECONDS)
    with _wav_writer(dst, total) as writer:
        for src in sources:
            with _wav_reader(src) as (reader, info):
                for pos in range(0, info.frames, block):
                    count = min(block, info.frames - pos)
                    writer.writeframesraw(_read_frames(reader, src, info, pos, count))
    return wav_info(dst)


def _check_distinct(src: Path, dst: Path) -> None:
    same = src.resolve() == dst.resolve()
    if not same and src.exists() and dst.exists():
        same = os.path.samefile(src, dst)
    if same:
        raise ValueError(f"destination {dst} is the source file")


# --------------------------------------------------------------------------------------------
# Silence


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
            _read_frames(self._reader, self._path, self._info, start, count),
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
    _check_distinct(src, dst)
    with _wav_reader(src) as (reader, info):
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
        return _copy_range(reader, src, info, dst, start, stop)


def is_silent(path: Path, *, threshold_dbfs: float = SILENCE_THRESHOLD_DBFS) -> bool:
    """True when no 10 ms chunk of the WAV at `path` reaches `threshold_dbfs` (RMS).

    This is exactly when `trim_silence` (with its default `chunk_ms`) would keep 0 frames.
    True for a file with 0 frames. Reads one-second blocks, so memory stays bounded.
    """
    with _wav_reader(path) as (reader, info):
        ceiling = _silence_ceiling(threshold_dbfs, info.sample_width)
        chunk = max(1, _ms_to_frames(10, info.sample_rate))
        block = chunk * 100
        pos = 0
        while pos < info.frames:
            count = min(block, info.frames - pos)
            data = _signed(_read_frames(reader, path, info, pos, count), info.sample_width)
            pos += count
            if audioop.max(data, info.sample_width) < ceiling:
                continue
            step = chunk * info.frame_width
            for offset in range(0, len(data), step):
                if audioop.rms(data[offset : offset + step], info.sample_width) >= ceiling:
                    return False
    return True


# --------------------------------------------------------------------------------------------
# ffmpeg


async def _run_ffmpeg(args: list[str], what: str) -> None:
    """Run ffmpeg with `args`; MediaError carrying ffmpeg's stderr unless it exits with 0."""
    try:
        proc = await asyncio.create_subprocess_exec(
            _FFMPEG,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise MediaError(f"{what}: cannot start {_FFMPEG}: {exc}") from exc
    try:
        _, stderr = await proc.communicate()
    except BaseException:
        # Cancelled: do not leave ffmpeg running behind us.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = stderr.decode("utf-8", errors="replace").strip()[-_STDERR_LIMIT:]
        raise MediaError(f"{what}: ffmpeg exited with status {proc.returncode}: {message}")


def _ffmpeg_path(path: Path) -> str:
    """`path` as an ffmpeg URL that can be neither an option nor another protocol."""
    return "file:" + os.fspath(path)


async def encode_mp3(src: Path, dst: Path, *, quality: int = 4) -> None:
    """Encode `src` (any audio ffmpeg reads) as MP3 at `dst` with LAME VBR `quality` (0-9).

    Raises MediaError, carrying ffmpeg's message, when ffmpeg fails; `dst` is then untouched.
    """
    if not 0 <= quality <= 9:
        raise ValueError(f"quality must be 0..9, not {quality}")
    with _atomic_file(dst) as tmp:
        await _run_ffmpeg(
            [
                "-nostdin", "-loglevel", "error", "-y",
                "-i", _ffmpeg_path(src),
                "-codec:a", "libmp3lame", "-q:a", str(quality),
                "-f", "mp3", _ffmpeg_path(tmp),
            ],
            f"encoding {src} as MP3",
        )  # fmt: skip


async def transcode_for_pbx(src: Path, dst: Path, *, sample_rate: int = 8000) -> AudioInfo:
    """Convert any audio ffmpeg reads to a mono 16-bit PCM WAV at `sample_rate`; return its info.

    Used for ``<Play>`` downloads and TTS output. Channels are mixed down, metadata and any
    video (cover art) are dropped, and the header is a plain 44-byte one. Raises MediaError
    when ffmpeg cannot read `src`; `dst` is then untouched.
    """
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    with _atomic_file(dst) as tmp:
        await _run_ffmpeg(
            [
                "-nostdin", "-loglevel", "error", "-y",
                "-i", _ffmpeg_path(src),
                "-vn", "-map_metadata", "-1",
                "-ac", "1", "-ar", str(sample_rate), "-codec:a", "pcm_s16le",
                "-fflags", "+bitexact", "-f", "wav", _ffmpeg_path(tmp),
            ],
            f"converting {src} for the PBX",
        )  # fmt: skip
        info = await asyncio.to_thread(wav_info, tmp)
        expected = (1, sample_rate, 2)
        if (info.channels, info.sample_rate, info.sample_width) != expected:
            raise MediaError(
                f"converting {src}: ffmpeg wrote {info}, not mono s16 {sample_rate} Hz"
            )
    return info
