"""The finaliser's worker process, and the one format of what passes between it and the adapter.

``python -m adapter.recordings.finalise_worker`` reads one job (JSON on stdin: the segments'
files, the target, channels, trim, pad), runs `adapter.recordings.assemble` on it and writes the
outcome (JSON on stdout): the final WAV's shape, null (no audio), or the error it raised
(`MediaError` or `OSError`, raised again by `decode_outcome` on the adapter's side). Any other
failure exits non-zero with its traceback on stderr.

It imports only the standard library and `adapter.recordings`' file modules (no pydub, asyncio,
database or PBX driver), so its memory is the interpreter's plus the bounded blocks the
assembler streams, whatever the recording's length.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.recordings.assemble import Segment, assemble
from adapter.recordings.media import AudioInfo, MediaError

__all__ = ["Job", "JobSegment", "decode_job", "decode_outcome", "encode_job", "main"]


@dataclass(frozen=True, slots=True)
class JobSegment:
    """A segment as the worker gets it (a `Segment`: the fields of a `CallRecordingHandle`
    the assembler reads, `files` as the handle listed them)."""

    inbound: bool
    outbound: bool
    inbound_file: Path | None
    outbound_file: Path | None
    stereo_file: Path | None
    files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """One `assemble` call: its arguments."""

    segments: tuple[JobSegment, ...]
    target: Path
    channels: int
    trim: bool
    pad: int


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def encode_job(
    segments: Sequence[Segment], target: Path, channels: int, *, trim: bool, pad: int
) -> bytes:
    """The job for `assemble(segments, target, channels, trim=trim, pad=pad)`, as sent."""
    return json.dumps({
        "segments": [{
            "inbound": s.inbound, "outbound": s.outbound,
            "inbound_file": _text(s.inbound_file), "outbound_file": _text(s.outbound_file),
            "stereo_file": _text(s.stereo_file), "files": [str(f) for f in s.files],
        } for s in segments],
        "target": str(target), "channels": channels, "trim": trim, "pad": pad,
    }).encode()


def decode_job(data: bytes) -> Job:
    """The job `encode_job` wrote."""
    raw: dict[str, Any] = json.loads(data)
    segments = tuple(JobSegment(
        bool(s["inbound"]), bool(s["outbound"]), _path(s["inbound_file"]),
        _path(s["outbound_file"]), _path(s["stereo_file"]), tuple(Path(f) for f in s["files"]),
    ) for s in raw["segments"])
    return Job(segments, Path(raw["target"]), int(raw["channels"]), bool(raw["trim"]),
               int(raw["pad"]))


def _encode_outcome(job: Job) -> bytes:
    try:
        info = assemble(job.segments, job.target, job.channels, trim=job.trim, pad=job.pad)
    except MediaError as exc:
        return json.dumps({"error": "media", "message": str(exc)}).encode()
    except OSError as exc:
        return json.dumps({"error": "os", "errno": exc.errno, "message": exc.strerror or str(exc),
                           "filename": exc.filename and str(exc.filename)}).encode()
    if info is None:
        return b"null"
    return json.dumps([info.channels, info.sample_rate, info.sample_width, info.frames]).encode()


def decode_outcome(data: bytes) -> AudioInfo | None:
    """What the worker's `assemble` returned, or its error raised again here."""
    raw = json.loads(data)
    if raw is None:
        return None
    if isinstance(raw, list):
        channels, rate, width, frames = (int(v) for v in raw)
        return AudioInfo(channels, rate, width, frames)
    if raw["error"] == "os":
        if raw["filename"] is not None:
            raise OSError(raw["errno"], raw["message"], raw["filename"])
        raise OSError(raw["errno"], raw["message"])
    raise MediaError(str(raw["message"]))


def main() -> int:
    """Run the job on stdin; its outcome on stdout."""
    outcome = _encode_outcome(decode_job(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(outcome)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
