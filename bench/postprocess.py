"""Row 6: post-processing a recording, the adapter against ffmpeg alone on the same file.

- **trim-silence + mp3**: `adapter.recordings.finalise` (one mono track, ``trim-silence``) and
  then `transcode.encode_mp3` (what the media URL's ``.mp3`` runs), against one ffmpeg encoding
  the untrimmed file to mp3 with the same settings;
- **dual-channel interleave**: `finalise` of Asterisk's two track files into the dual WAV,
  against ffmpeg merging the same two files into a 2-channel WAV (``amerge``).

Each job runs in its own child process; its time is the job's own (from after the child's
imports: the adapter is running when a recording ends) against ffmpeg's process from its spawn
to its exit. Peaks: the child's own (VmHWM); the finaliser's worker process, when the recording
is long enough to get one (`adapter.recordings.finalise.WORKER_MIN_BYTES`); ffmpeg's. The last
two are ru_maxrss of a grandchild, which Linux makes at least the size of the process that
spawned it (the child, about 25 MiB). The recordings are generated (sox, 1 min at most,
repeated): band-limited pink noise, amplitude-modulated like speech, with 3 s of silence at each
end, once per length and run of the module; 8 kHz, 16-bit mono,
1 min, 1 h and 4 h (quick mode: 11 s and 20 s). The PBX files finalise removes are hard links.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import wave
from pathlib import Path

from bench.measure import ChildResult, in_child, runs_for
from bench.rows import Ratio, Row

TARGET_TIME_RATIO = 1.5
TARGET_PEAK_MIB = 64.0
FFMPEG = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]

# Each child prints "JOB <seconds> <children's peak KiB>" first: the job's own time, from after
# the imports (the adapter is already running when a recording ends) to its end, and the peak of
# the processes it started so far (the finaliser's worker; ffmpeg is reported apart).
_TRIM_CHILD = """
import asyncio, os, resource, sys, time
from pathlib import Path
from adapter.pbx.base import CallRecordingHandle
from adapter.recordings.finalise import finalise
from adapter.recordings.transcode import encode_mp3
src, work = Path(sys.argv[1]), Path(sys.argv[2])
pbx = work / "pbx.wav"
os.link(src, pbx)
started = time.perf_counter()
info = finalise([CallRecordingHandle.of_tracks("bench", pbx, None)], work / "RE.wav", 1,
                trim=True)
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
asyncio.run(encode_mp3(work / "RE.wav", work / "RE.mp3"))
print("JOB", time.perf_counter() - started, worker)
print(info.frames)
"""

_DUAL_CHILD = """
import os, resource, sys, time
from pathlib import Path
from adapter.pbx.base import CallRecordingHandle
from adapter.recordings.finalise import finalise
left, right, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
os.link(left, work / "in.wav"); os.link(right, work / "out.wav")
started = time.perf_counter()
info = finalise([CallRecordingHandle.of_tracks("bench", work / "in.wav", work / "out.wav")],
                work / "RE.wav", 2, trim=False)
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("JOB", time.perf_counter() - started, worker)
print(info.frames)
"""

_FFMPEG_CHILD = """
import subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print("JOB", time.perf_counter() - started, 0)
"""


def _job(result: ChildResult) -> tuple[float, float]:
    """The job's own seconds and its worker's peak (MiB) the child printed."""
    _tag, seconds, worker_kib = result.stdout.splitlines()[0].split()
    return float(seconds), int(worker_kib) / 1024


_TILE_SECONDS = 60
"""Longest stretch sox synthesises; longer recordings repeat it (sox's filter on 4 h of noise
took minutes of the module's budget on the loaded box; ffmpeg and the finaliser cost the same
on repeated audio as on fresh)."""


def _generate(path: Path, seconds: int, repeatable: bool) -> None:
    """Speech-like noise (300–3400 Hz pink noise, 4 Hz and 0.25 Hz tremolo; at most
    `_TILE_SECONDS` of it, repeated), 3 s of digital silence at each end, `seconds` long in all
    (`repeatable`: sox's fixed seed)."""
    sound = seconds - 6
    tile_path = path.with_name(f"{path.stem}.tile.wav")
    subprocess.run(
        ["sox", *(["-R"] if repeatable else []), "-n", "-r", "8000", "-b", "16", "-c", "1",
         str(tile_path), "synth", str(min(sound, _TILE_SECONDS)), "pinknoise", "sinc",
         "300-3400", "tremolo", "4", "60", "tremolo", "0.25", "40", "vol", "0.3"],
        check=True,
    )
    with wave.open(str(tile_path), "rb") as reader:
        tile = reader.readframes(reader.getnframes())
    tile_path.unlink()
    silence = bytes(3 * 8000 * 2)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(silence)
        left = sound * 8000 * 2
        while left:
            writer.writeframes(tile[:left])
            left -= min(left, len(tile))
        writer.writeframes(silence)


def _clean(work: Path) -> None:
    for p in work.iterdir():
        p.unlink()


def _one_length(label: str, seconds: int, runs: int, root: Path) -> list[Row]:
    mono, other = root / f"{label}-in.wav", root / f"{label}-out.wav"
    _generate(mono, seconds, True)
    _generate(other, seconds, False)
    work = root / "work"
    work.mkdir(exist_ok=True)
    ours_trim: list[ChildResult] = []
    ff_trim: list[ChildResult] = []
    ours_dual: list[ChildResult] = []
    ff_dual: list[ChildResult] = []
    for i in range(runs):
        pairs = [
            (ours_trim, lambda: in_child(_TRIM_CHILD, str(mono), str(work))),
            (ff_trim, lambda: in_child(_FFMPEG_CHILD, *FFMPEG, "-i", f"file:{mono}", "-codec:a",
                                       "libmp3lame", "-q:a", "4", "-f", "mp3",
                                       f"file:{work / 'ff.mp3'}")),
            (ours_dual, lambda: in_child(_DUAL_CHILD, str(mono), str(other), str(work))),
            (ff_dual, lambda: in_child(_FFMPEG_CHILD, *FFMPEG, "-i", f"file:{mono}", "-i",
                                       f"file:{other}", "-filter_complex",
                                       "[0:a][1:a]amerge=inputs=2", "-codec:a", "pcm_s16le",
                                       "-f", "wav", f"file:{work / 'ff.wav'}")),
        ]
        for out, job in pairs if i % 2 == 0 else reversed(pairs):
            out.append(job())
            _clean(work)
    mono.unlink()
    other.unlink()
    rows = []
    for what, ours, theirs, ff_what in (
        ("trim-silence + mp3", ours_trim, ff_trim, "ffmpeg → mp3 (same file, untrimmed)"),
        ("dual-channel interleave (two tracks → stereo WAV)", ours_dual, ff_dual,
         "ffmpeg `amerge` → stereo WAV"),
    ):
        ours_s = [_job(r)[0] for r in ours]
        theirs_s = [_job(r)[0] for r in theirs]
        ratio = Ratio.of([a / b for a, b in zip(ours_s, theirs_s, strict=True)])
        peak = max(r.peak_rss_mib for r in ours)
        worker = max(_job(r)[1] for r in ours)
        child = max(r.children_peak_rss_mib for r in ours)
        secs = statistics.median(ours_s)
        ff_secs = statistics.median(theirs_s)
        ff_peak = max(r.children_peak_rss_mib for r in theirs)
        met = ratio.median <= TARGET_TIME_RATIO and max(peak, worker) <= TARGET_PEAK_MIB
        rows.append(Row(
            measured=f"{what}, {label} recording",
            against=f"{ff_what}: {ff_secs:.2f} s, ffmpeg peak {ff_peak:.0f} MiB",
            figure=f"{secs:.2f} s; adapter peak RSS {peak:.0f} MiB"
                   + (f", its finaliser worker {worker:.0f} MiB" if worker else "")
                   + (f", its ffmpeg {child:.0f} MiB" if child > worker else ""),
            ratio=ratio,
            target=f"time ≤ {TARGET_TIME_RATIO}× ffmpeg; peak ≤ {TARGET_PEAK_MIB:.0f} MiB, "
                   "flat in length",
            met=met,
        ))
    return rows


def run(quick: bool) -> list[Row]:
    # (label, seconds, runs): 5 interleaved runs, 3 of the 4 h size (its two mp3 encodings
    # take about 25 s a run), so the module fits its 200 s.
    lengths = [("11 s", 11, runs_for(quick)), ("20 s", 20, runs_for(quick))] if quick else [
        ("1 min", 60, 5), ("1 h", 3600, 5), ("4 h", 4 * 3600, 3)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="twiml-bench-audio-") as tmp:
        for label, seconds, runs in lengths:
            rows += _one_length(label, seconds, runs, Path(tmp))
    return rows
