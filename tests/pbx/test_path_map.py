"""`PathMap.to_pbx`: a spool file as the PBX sees it, worked out on the names alone; a path
that leaves the spool (``..``, another folder, a sibling sharing the spool's prefix) is refused."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from adapter.pbx.base import PathMap, PbxError

SPOOL = PathMap(local=Path("/data/spool"), pbx=PurePosixPath("/var/spool/pbx"))


@pytest.mark.parametrize(("local", "pbx"), [
    ("/data/spool/RE1.wav", "/var/spool/pbx/RE1.wav"),
    ("/data/spool/calls/CA1/RE1.wav", "/var/spool/pbx/calls/CA1/RE1.wav"),
    ("/data/spool/calls/../RE1.wav", "/var/spool/pbx/RE1.wav"),
    ("/data/spool/./calls//RE1.wav", "/var/spool/pbx/calls/RE1.wav"),
])
def test_a_spool_file_is_named_under_the_pbx_spool(local: str, pbx: str) -> None:
    assert SPOOL.to_pbx(Path(local)) == PurePosixPath(pbx)


@pytest.mark.parametrize("local", [
    "/data/spool/../secret.wav", "/data/spool/calls/../../etc/passwd", "/etc/passwd",
    "/data/spoolish/RE1.wav",
])
def test_a_path_outside_the_spool_is_refused(local: str) -> None:
    with pytest.raises(PbxError, match="escapes the spool"):
        SPOOL.to_pbx(Path(local))


def test_a_relative_spool_is_read_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spool = PathMap(local=Path("spool"), pbx=PurePosixPath("/s"))
    assert spool.to_pbx(tmp_path / "spool" / "RE1.wav") == PurePosixPath("/s/RE1.wav")
    assert spool.to_pbx(Path("spool/a/RE1.wav")) == PurePosixPath("/s/a/RE1.wav")
