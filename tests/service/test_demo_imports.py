"""`make demo` (docker/demo.py, the README's first command) imports the test support code and the
Asterisk lab from tests/: moving them must not break it. Run as its own process, as make runs it,
up to (not including) the call itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "docker" / "demo.py"


def test_the_demo_finds_everything_it_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         f"import runpy; ns = runpy.run_path({str(DEMO)!r}, run_name='imported'); "
         "print(callable(ns['main']))"],
        capture_output=True, text=True, timeout=60, cwd="/", check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
