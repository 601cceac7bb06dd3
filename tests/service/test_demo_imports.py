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


def test_the_demo_says_where_the_file_stays_and_that_the_url_dies_with_it(tmp_path: Path) -> None:
    """Issue 15: the demo printed a recording URL that is dead once the demo ends."""
    import runpy
    from datetime import UTC, datetime

    from adapter_harness import http_config

    from adapter.db.store import RecordingRow

    ns = runpy.run_path(str(DEMO), run_name="imported")
    config = http_config(tmp_path, 8080, public_media=False)
    now = datetime.now(UTC)
    row = RecordingRow(sid="RE" + "1" * 32, account_sid=config.account_sid,
                       call_sid="CA" + "2" * 32, status="completed", source="RecordVerb",
                       start_time=now, duration=6,
                       media_path="RE" + "1" * 32 + ".wav", date_created=now, date_updated=now)
    lines = ns["recording_lines"](config, row)
    assert f"file: {config.media_dir / (row.sid + '.wav')}  (kept after the demo)" in lines[1]
    assert config.recording_url(row.sid) in lines[2]
    assert "served only while the demo runs" in lines[2]
