"""The rough edges of issue 15 that live in the Makefile and the README, as `make -n` and the
README show them: apt-get waits for the dpkg lock and is quiet, says what it installs, pip is
quiet, and the install instructions use a venv (Debian 12's Python is externally managed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def recipe(*targets: str) -> str:
    """What make would run for `targets` (`make -n`: nothing is run). The lines are read as
    make prints them, whatever is installed already."""
    done = subprocess.run(["make", "-n", "-B", *targets], cwd=REPO, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_apt_get_waits_for_the_dpkg_lock_and_is_quiet() -> None:
    text = recipe("apt-packages")
    calls = re.findall(r"(?<!\")apt-get [^;&|]*", text)  # not the echo
    assert len(calls) == 2  # update, install
    for call in calls:
        assert "-o DPkg::Lock::Timeout=600" in call and "-qq" in call, call
    assert 'echo "apt-get install:$missing"' in text  # says what it installs, once


def test_pip_is_quiet() -> None:
    text = recipe("venv")
    (pip,) = re.findall(r".*pip install.*", text)
    assert " -q " in pip


def test_every_apt_get_of_the_quick_starts_waits_for_the_lock_too() -> None:
    for script in (REPO / "packaging" / "quickstart").glob("*.sh"):
        calls = re.findall(r"^apt-get .*", script.read_text(), flags=re.M)
        assert calls and all("DPkg::Lock::Timeout=600" in c for c in calls), script


def test_the_readme_installs_into_a_venv() -> None:
    blocks = re.findall(r"^```(?:sh|bash)?\n(.*?)^```$", (REPO / "README.md").read_text(),
                        flags=re.M | re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    pips = [i for i, line in enumerate(lines) if re.search(r"\bpip install\b", line)]
    assert pips
    for index in pips:
        assert not re.match(r"\s*(sudo\s+)?pip3? install", lines[index]), lines[index]
        assert any("-m venv" in line for line in lines[:index]), lines[index]
