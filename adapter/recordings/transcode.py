"""ffmpeg: a recording encoded as MP3 (the media URL's ``.mp3``), and any audio converted to the
WAV the PBX plays (``<Play>`` downloads, TTS output).

These run ffmpeg as a subprocess (never in the event loop's thread), write a temporary file in
the destination's folder and rename it into place (`adapter.recordings.media.atomic_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from adapter.recordings.media import AudioInfo, MediaError, atomic_file, wav_info

__all__ = ["encode_mp3", "transcode_for_pbx"]

_FFMPEG = "ffmpeg"
_STDERR_LIMIT = 2000


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
    with atomic_file(dst) as tmp:
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
    with atomic_file(dst) as tmp:
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
