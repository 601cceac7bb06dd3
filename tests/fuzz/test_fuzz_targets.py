"""CI's bounded fuzzing: the atheris targets (tests/fuzz/) run side by side for a few seconds
from their seed corpora; any crash (an exception, a failed invariant, an input slower than 5 s)
fails the test with the fuzzer's report. `make fuzz` runs them for longer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).parent
SECONDS = 8  # each, in parallel: about 10 s of wall time with start-up
TARGETS = {"twiml": "fuzz_twiml.py", "ami": "fuzz_ami_frames.py", "esl": "fuzz_esl_frames.py"}


def test_fuzz_targets_run_clean_for_a_bounded_time(tmp_path: Path) -> None:
    runs: dict[str, subprocess.Popen[str]] = {}
    for name, script in TARGETS.items():
        corpus = tmp_path / name
        corpus.mkdir()
        runs[name] = subprocess.Popen(
            [sys.executable, str(FUZZ / script), str(corpus), str(FUZZ / "seeds" / name),
             *([f"-dict={FUZZ / f'{name}.dict'}"] if (FUZZ / f"{name}.dict").exists() else []),
             f"-max_total_time={SECONDS}", "-timeout=5",
             "-print_final_stats=1", f"-artifact_prefix={tmp_path}/{name}-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
    for name, process in runs.items():
        _, report = process.communicate(timeout=SECONDS + 60)
        assert process.returncode == 0, f"{name} fuzz target failed:\n{report[-4000:]}"
        executed = re.search(r"stat::number_of_executed_units:\s+(\d+)", report)
        assert executed is not None and int(executed.group(1)) > 1000, report[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*-crash-*")) == []
