"""`python -m bench --quick` keeps working: every registered benchmark module on this checkout
runs on tiny sizes and gives its rows, and the report has a section per issue row. Targets are
not asserted here (the figures of a smoke run mean nothing)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.registry import ISSUE_ROW, MODULES  # noqa: E402


def test_quick_run_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    present = [m for m in MODULES if importlib.util.find_spec(m) is not None]
    # The real-PBX load row starts its own PBXs: too slow for a smoke run in CI.
    only = [m for m in present if m != "bench.real_pbx_load"]
    args = [sys.executable, "-m", "bench", "--quick", "--out", str(out)]
    for name in only:
        args += ["--only", name]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for name in only:
        section = report.split(f"## {ISSUE_ROW[name]}\n", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        assert "Not measured: failed" not in body, body
        assert body.count("\n| ") >= 2, f"{name} gave no rows:\n{body}"  # header + a row
    assert "## Machine" in report


def test_a_child_peak_is_its_own_not_its_parents() -> None:
    """`in_child` reports the child's own memory: Linux hands a parent's maxrss on to a child
    across exec, and a 200 MiB parent must not make a small child look 200 MiB."""
    from bench.measure import in_child

    small = in_child("pass").peak_rss_mib
    ballast = bytearray(200 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    assert in_child("pass").peak_rss_mib < small + 50
    grown = in_child("b = bytearray(100 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1")
    assert grown.peak_rss_mib > small + 90
    del ballast
