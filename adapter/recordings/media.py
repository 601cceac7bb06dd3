"""PCM WAV files as the PBX writes them: their shape, whether the writer has closed them, and
the frame-level reading and writing every other recordings module builds on.

Recordings arrive as PCM WAV (16-bit, usually 8 kHz, mono or 2-channel) written by Asterisk's
MixMonitor or FreeSWITCH's ``uuid_record``, or as headerless interleaved s16le ``.raw`` files
(MixMonitor option ``D``). Combining tracks and segments is `adapter.recordings.tracks`, silence
`adapter.recordings.silence`, ffmpeg `adapter.recordings.transcode`.

Memory is bounded regardless of the recording's length: nothing here loads a whole recording;
every copy streams frames in one-second blocks. These functions do blocking CPU and disk work;
callers run them with ``asyncio.to_thread``. Every function that produces a file writes a
temporary file in the destination's folder and renames it into place (`atomic_file`), so a
reader never sees a half-written destination.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapter.errors import AdapterError

__all__ = [
    "BLOCK_SECONDS",
    "AudioInfo",
    "MediaError",
    "atomic_file",
    "check_distinct",
    "copy_frames",
    "copy_wav",
    "open_wav",
    "raw_to_wav",
    "read_frames",
    "wav_info",
    "wav_is_final",
    "wav_writer",
]

BLOCK_SECONDS = 1
"""Frames streamed per read/write when copying (seconds of audio)."""

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
def open_wav(path: Path) -> Iterator[tuple[wave.Wave_read, AudioInfo]]:
    """The complete PCM WAV at `path`, open for reading, with its shape (MediaError if not)."""
    info = wav_info(path)
    try:
        reader = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the `with` below
    except (OSError, EOFError, wave.Error) as exc:
        raise MediaError(f"{path}: cannot open: {exc}") from exc
    with reader:
        if reader.getnframes() != info.frames:
            raise MediaError(f"{path}: changed while it was being opened")
        yield reader, info


def read_frames(
    reader: wave.Wave_read, path: Path, info: AudioInfo, start: int, count: int
) -> bytes:
    """Exactly `count` frames from frame `start` (MediaError if the file is shorter)."""
    reader.setpos(start)
    data = reader.readframes(count)
    if len(data) != count * info.frame_width:
        raise MediaError(f"{path}: shorter than its header says (changed while reading?)")
    return data


def _temp_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.tmp")


@contextlib.contextmanager
def atomic_file(dst: Path) -> Iterator[Path]:
    """A temporary path next to `dst`, renamed onto `dst` when the block succeeds."""
    tmp = _temp_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def wav_writer(dst: Path, shape: AudioInfo) -> Iterator[wave.Wave_write]:
    """A WAV writer with `shape`'s format and frame count, published atomically at `dst`."""
    with atomic_file(dst) as tmp, wave.open(str(tmp), "wb") as writer:
        writer.setnchannels(shape.channels)
        writer.setsampwidth(shape.sample_width)
        writer.setframerate(shape.sample_rate)
        writer.setnframes(shape.frames)
        yield writer


def copy_frames(
    reader: wave.Wave_read, src: Path, info: AudioInfo, dst: Path, start: int, stop: int
) -> AudioInfo:
    """Write frames [start, stop) of `src` to `dst` in one-second blocks; return dst's info."""
    shape = AudioInfo(info.channels, info.sample_rate, info.sample_width, stop - start)
    block = max(1, info.sample_rate * BLOCK_SECONDS)
    with wav_writer(dst, shape) as writer:
        pos = start
        while pos < stop:
            count = min(block, stop - pos)
            writer.writeframesraw(read_frames(reader, src, info, pos, count))
            pos += count
    return wav_info(dst)


def copy_wav(src: Path, dst: Path) -> AudioInfo:
    """Copy the complete PCM WAV `src` to `dst` in one-second blocks; return dst's info.

    `dst` gets a freshly written canonical 44-byte header (``fmt `` and ``data`` chunks only,
    sizes correct), whatever other chunks `src` carried. `dst` must not be `src` (ValueError).
    """
    check_distinct(src, dst)
    with open_wav(src) as (reader, info):
        return copy_frames(reader, src, info, dst, 0, info.frames)


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
    check_distinct(src, dst)
    frame_width = channels * sample_width
    try:
        raw = src.open("rb")
    except OSError as exc:
        raise MediaError(f"{src}: cannot read: {exc.strerror or exc}") from exc
    with raw:
        frames = os.fstat(raw.fileno()).st_size // frame_width
        shape = AudioInfo(channels, sample_rate, sample_width, frames)
        block = sample_rate * BLOCK_SECONDS * frame_width
        remaining = frames * frame_width
        with wav_writer(dst, shape) as writer:
            while remaining:
                data = raw.read(min(block, remaining))
                if not data:
                    raise MediaError(f"{src}: shrank while it was being read")
                writer.writeframesraw(data)
                remaining -= len(data)
    return wav_info(dst)


def check_distinct(src: Path, dst: Path) -> None:
    """ValueError when `dst` is `src` (by path or, when both exist, as the same file)."""
    same = src.resolve() == dst.resolve()
    if not same and src.exists() and dst.exists():
        same = os.path.samefile(src, dst)
    if same:
        raise ValueError(f"destination {dst} is the source file")
