"""The finaliser's worker process (`adapter.recordings.finalise_worker`): long recordings are
assembled there, to the byte what the in-thread assembler makes, with its errors raised again in
the adapter, the PBX's files removed whatever happens, and an import list without pydub,
asyncio or anything else the assembler does not need."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from wav_files import read_frames, write_wav

import adapter
from adapter.pbx.base import CallRecordingHandle
from adapter.recordings import finalise as finalise_module
from adapter.recordings import layout
from adapter.recordings.assemble import assemble
from adapter.recordings.finalise import finalise
from adapter.recordings.media import MediaError

RATE = 8000


def _tone_wav(path: Path, seconds: float, freq: float, quiet: float = 0.0) -> Path:
    lead = [0] * int(quiet * RATE)
    body = [int(9000 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(int(seconds * RATE))]
    samples = lead + body + lead
    return write_wav(path, struct.pack(f"<{len(samples)}h", *samples), rate=RATE)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return layout.call_spool(tmp_path / "spool", "CA1")


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every worker started (its command line), every job sent to one."""
    started: list[list[str]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        started.append(list(args))
        return real_run(args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(finalise_module.subprocess, "run", spy)
    return started


def _copy(handle: CallRecordingHandle, folder: Path) -> CallRecordingHandle:
    """The same recording in other files (for the in-thread reference)."""
    folder.mkdir(parents=True, exist_ok=True)
    def moved(p: Path | None) -> Path | None:
        return None if p is None else Path(shutil.copy(p, folder / p.name))
    return CallRecordingHandle.of_tracks("", moved(handle.inbound_file),
                                         moved(handle.outbound_file))


@pytest.mark.parametrize(("channels", "trim", "pad"), [(2, False, 0), (1, True, 0), (1, False, 2)])
def test_the_worker_makes_what_the_thread_makes(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: list[list[str]],
    channels: int, trim: bool, pad: int,
) -> None:
    inbound = _tone_wav(layout.track_file(spool, "RE1", "inbound"), 1.0, 440, quiet=0.5)
    outbound = (_tone_wav(layout.track_file(spool, "RE1", "outbound"), 1.2, 1000)
                if channels == 2 else None)
    handle = CallRecordingHandle.of_tracks("", inbound, outbound)
    reference = tmp_path / "reference.wav"
    expected = assemble([_copy(handle, tmp_path / "copy")], reference, channels, trim=trim,
                        pad=pad)
    monkeypatch.setattr(finalise_module, "WORKER_MIN_BYTES", 0)
    target = tmp_path / "media" / "RE1.wav"
    info = finalise([handle], target, channels, trim=trim, pad=pad)
    assert len(runs) == 1 and runs[0][-2:] == ["-m", "adapter.recordings.finalise_worker"]
    assert info == expected
    assert read_frames(target) == read_frames(reference)
    assert not any(spool.iterdir()) and not list(target.parent.glob(".*"))


def test_only_long_recordings_go_to_the_worker(
    spool: Path, tmp_path: Path, runs: list[list[str]]
) -> None:
    short = _tone_wav(layout.track_file(spool, "RE1", "inbound"), 2.0, 440)
    assert finalise([CallRecordingHandle.of_tracks("", short, None)], tmp_path / "a.wav", 1,
                    trim=False) is not None
    assert runs == []
    seconds = finalise_module.WORKER_MIN_BYTES / (2 * RATE) + 1
    long = _tone_wav(layout.track_file(spool, "RE2", "inbound"), seconds, 440)
    info = finalise([CallRecordingHandle.of_tracks("", long, None)], tmp_path / "b.wav", 1,
                    trim=False)
    assert len(runs) == 1
    assert info is not None and info.frames == int(seconds * RATE)


def test_the_workers_errors_are_raised_here_and_the_pbx_files_removed(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: list[list[str]]
) -> None:
    monkeypatch.setattr(finalise_module, "WORKER_MIN_BYTES", 0)
    mono = _tone_wav(layout.stereo_file(spool, "RE1"), 1.0, 440)  # not the 2 channels it says
    target = tmp_path / "media" / "RE1.wav"
    with pytest.raises(MediaError, match="expected 2 of 16"):
        finalise([CallRecordingHandle.of_stereo("", mono, inbound=True, outbound=True)],
                 target, 2, trim=False)
    assert not target.exists() and not mono.exists()
    track = _tone_wav(layout.track_file(spool, "RE2", "inbound"), 1.0, 440)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(OSError) as caught:
        finalise([CallRecordingHandle.of_tracks("", track, None)], blocked / "RE2.wav", 1,
                 trim=False)
    assert not isinstance(caught.value, MediaError) and caught.value.errno is not None
    assert not track.exists()
    assert len(runs) == 2


def test_a_worker_that_dies_is_a_media_error_and_the_pbx_files_go(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finalise_module, "WORKER_MIN_BYTES", 0)
    monkeypatch.setattr(finalise_module, "_worker_command",
                        lambda: [sys.executable, "-c", "import sys; sys.exit('killed')"])
    track = _tone_wav(layout.track_file(spool, "RE1", "inbound"), 1.0, 440)
    target = tmp_path / "media" / "RE1.wav"
    with pytest.raises(MediaError, match="status 1: killed"):
        finalise([CallRecordingHandle.of_tracks("", track, None)], target, 1, trim=False)
    assert not track.exists() and not target.exists()


def test_the_worker_imports_only_what_it_needs() -> None:
    """As the adapter starts it (no site, this package on PYTHONPATH)."""
    code = ("import sys, adapter.recordings.finalise_worker; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    root = str(Path(adapter.__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": root}).stdout.split()
    assert "adapter" in out
    for heavy in ("pydub", "asyncio", "subprocess", "sqlalchemy", "aiohttp", "logging"):
        assert heavy not in out, heavy
    mods = subprocess.run(
        [sys.executable, "-S", "-c", "import sys, adapter.recordings.finalise_worker; "
         "print(' '.join(m for m in sys.modules if m.startswith('adapter.')))"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": root}).stdout.split()
    assert not [m for m in mods if m.startswith("adapter.pbx")], mods
