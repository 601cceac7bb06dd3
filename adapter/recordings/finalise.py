"""The PBX's files of a recording → the final WAV it is published as (what that WAV is made of:
`adapter.recordings.assemble`), made where it costs the adapter least.

A recording whose PBX files hold at least `WORKER_MIN_BYTES` is assembled in a worker process
(`adapter.recordings.finalise_worker`): seconds of block copying then run on the other core
instead of taking the event loop's GIL turns, and in a small interpreter of their own. A
shorter one is assembled in the calling thread: a new interpreter's start-up (about 20 ms
idle, 0.2 s on a loaded machine) would cost more than the job.

Blocking CPU and disk work either way: callers run `finalise` with ``asyncio.to_thread``. The
thread waits for the worker with the GIL released, and a cancelled caller's job still runs to
its end (as a thread's would), so the PBX's files are always removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import adapter
from adapter.recordings import finalise_worker
from adapter.recordings.assemble import Segment, assemble
from adapter.recordings.media import AudioInfo, MediaError

__all__ = ["WORKER_MIN_BYTES", "finalise"]

WORKER_MIN_BYTES = 8 * 2**20
"""PBX files of at least this many bytes in all (about 9 min of 8 kHz mono, 4.5 min of dual)
are assembled in a worker process: the job is then a second or more, its start-up a few %."""

_STDERR_LIMIT = 2000


def finalise(
    segments: Sequence[Segment], target: Path, channels: int, *, trim: bool, pad: int = 0,
) -> AudioInfo | None:
    """The final WAV at `target` made from `segments` (`adapter.recordings.assemble.assemble`);
    its shape, or None when it holds no audio (then `target` does not exist).

    `channels` is the recording's (2: dual). Raises `MediaError` / `OSError` when a file is
    unusable or cannot be written, or the worker process failed; `target` does not exist then
    either. The PBX's files are removed in every case.
    """
    if _pbx_bytes(segments) < WORKER_MIN_BYTES:
        return assemble(segments, target, channels, trim=trim, pad=pad)
    return _in_worker(segments, target, channels, trim=trim, pad=pad)


def _pbx_bytes(segments: Sequence[Segment]) -> int:
    total = 0
    for path in (f for s in segments for f in s.files):
        try:
            total += path.stat().st_size
        except OSError:
            continue  # absent (discarded) or unreadable: the assembler says which
    return total


def _worker_command() -> list[str]:
    """The worker's command line: this interpreter, no site (the worker needs only the
    standard library and this package, found through PYTHONPATH)."""
    return [sys.executable, "-S", "-m", "adapter.recordings.finalise_worker"]


def _in_worker(
    segments: Sequence[Segment], target: Path, channels: int, *, trim: bool, pad: int
) -> AudioInfo | None:
    job = finalise_worker.encode_job(segments, target, channels, trim=trim, pad=pad)
    package_root = str(Path(adapter.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        done = subprocess.run(_worker_command(), input=job, capture_output=True, env=env,
                              check=False)
    except OSError as exc:
        _remove_all(segments, target)
        raise MediaError(f"{target.stem}: cannot start the finaliser worker: {exc}") from exc
    if done.returncode != 0:
        # Killed or crashed mid-job: nothing it made is trusted, the PBX's files go as always.
        _remove_all(segments, target)
        message = done.stderr.decode("utf-8", errors="replace").strip()[-_STDERR_LIMIT:]
        raise MediaError(f"{target.stem}: the finaliser worker exited with status "
                         f"{done.returncode}: {message}")
    return finalise_worker.decode_outcome(done.stdout)


def _remove_all(segments: Sequence[Segment], target: Path) -> None:
    target.unlink(missing_ok=True)
    for path in (f for s in segments for f in s.files):
        path.unlink(missing_ok=True)
