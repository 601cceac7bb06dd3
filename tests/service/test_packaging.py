"""packaging/: the systemd unit (systemd-analyze verify and security), the sample configuration
(loaded by the adapter's own loader, every key of the schema in it) and install.sh (a real run:
users, groups, the setgid spool both sides can write, the config at mode 600)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.config import load_config
from adapter.config.loading import SCHEMA

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
UNIT = PACKAGING / "twiml-adapter.service"
SAMPLE = PACKAGING / "adapter.toml"
INSTALL = PACKAGING / "install.sh"
VENV_BIN = Path(sys.executable).parent


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, in order, by key (repeated keys kept)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def runnable_unit(tmp_path: Path) -> Path:
    """The unit with its ExecStart pointing at this venv's twiml-adapter (same arguments):
    systemd-analyze verify checks that the command exists."""
    text = UNIT.read_text().replace("/opt/twiml-adapter/venv/bin/", f"{VENV_BIN}/")
    path = tmp_path / "twiml-adapter.service"
    path.write_text(text)
    return path


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = runnable_unit(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_unit_exposure_stays_low(tmp_path: Path) -> None:
    """systemd-analyze security rates it 1.6 ("OK"); over 2.0 means a hardening line was lost."""
    unit = runnable_unit(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True, text=True, cwd=tmp_path)
    overall = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert overall is not None, result.stdout + result.stderr
    assert result.returncode == 0, overall.group(0)
    assert float(overall.group(1)) <= 2.0


def test_unit_runs_as_its_own_user_with_the_shared_spool() -> None:
    settings = unit_settings(UNIT.read_text())
    expected = {
        "User": ["twiml-adapter"], "Group": ["twiml-adapter"], "SupplementaryGroups": ["asterisk"],
        "StateDirectory": ["twiml-adapter"], "ConfigurationDirectory": ["twiml-adapter"],
        "UMask": ["0007"], "Restart": ["on-failure"], "RestartPreventExitStatus": ["2"],
        "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"], "PrivateDevices": ["yes"], "LockPersonality": ["yes"],
        "MemoryDenyWriteExecute": ["yes"], "CapabilityBoundingSet": [""],
        "ReadWritePaths": ["-/var/spool/asterisk/twiml -/var/spool/freeswitch/twiml"],
    }
    for key, values in expected.items():
        assert settings.get(key) == values, key
    assert "@system-service" in settings["SystemCallFilter"]
    assert set(settings["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs"):
        assert settings[key] == ["yes"], key
    (exec_start,) = settings["ExecStart"]
    assert exec_start.split() == [
        "/opt/twiml-adapter/venv/bin/twiml-adapter", "serve",
        "--config", "/etc/twiml-adapter/adapter.toml",
    ]


def sample_keys(text: str) -> set[str]:
    """``section.key`` of every key in the sample, set or shown commented out (``# key = …``)."""
    keys: set[str] = set()
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?(\w+)\]\]?", line.strip())
        if header:
            section = header.group(1)
            continue
        key = re.match(r"(?:# )?(\w+) = ", line)
        if key and section:
            keys.add(f"{section}.{key.group(1)}")
    return keys


def test_sample_config_shows_every_key_of_the_schema() -> None:
    schema_keys = {f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys}
    keys = sample_keys(SAMPLE.read_text())
    assert keys - {"numbers.number", "numbers.voice_url", "numbers.voice_method"} == schema_keys
    assert {"numbers.number", "numbers.voice_url", "numbers.voice_method"} <= keys


def test_sample_config_says_chmod_600() -> None:
    assert "chmod 600" in SAMPLE.read_text()


@pytest.mark.parametrize("pbx", ["asterisk", "freeswitch"])
def test_sample_config_loads_and_its_values_are_the_defaults(pbx: str) -> None:
    """The real loader takes the sample as is; apart from the CHANGE values it says what the
    adapter would do with no file at all (the sample never silently changes a default)."""
    environ = {"TWIML_ADAPTER_PBX_TYPE": pbx}
    config = load_config(SAMPLE, environ)
    assert config.pbx == pbx
    required = {
        "TWIML_ADAPTER_ACCOUNT_SID": config.account_sid,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": config.auth_token,
        "TWIML_ADAPTER_ASTERISK_USERNAME": "twiml",
        "TWIML_ADAPTER_ASTERISK_SECRET": "CHANGE-ME-ami-secret",
        "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": "CHANGE-ME-esl-password",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://127.0.0.1:5000/voice"}]',
    }
    defaults = load_config(None, {**environ, **required})
    assert config == defaults


@pytest.fixture
def install_root() -> Iterator[dict[str, str]]:
    """Two throwaway system users (the adapter's, a PBX's) and the paths install.sh writes."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run install.sh's test as root")
        pytest.skip("install.sh creates system users: run as root (CI does)")
    names = {"TWIML_USER": "twiml-pkg-test", "PBX_USER": "twiml-pkg-pbx"}
    for name in names.values():
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", names["PBX_USER"]], check=True)
    # pytest's tmp_path is under a 0700 folder of root's: the users could not reach it.
    tmp_path = Path(tempfile.mkdtemp(prefix="twiml-pkg-"))
    tmp_path.chmod(0o755)
    env = {**names, "PBX_GROUP": names["PBX_USER"], "TWIML_SPOOL": str(tmp_path / "spool"),
           "TWIML_DATA": str(tmp_path / "data"), "TWIML_ETC": str(tmp_path / "etc"),
           "TWIML_SYSTEMD": str(tmp_path / "systemd")}
    try:
        yield env
    finally:
        shutil.rmtree(tmp_path)
        for name in names.values():
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)


def as_user(user: str, script: str) -> subprocess.CompletedProcess[str]:
    """`script` run by /bin/sh as `user` with its groups, under the unit's UMask=0007."""
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
         "sh", "-c", f"umask 0007; {script}"],
        capture_output=True, text=True)


def test_install_script_makes_a_spool_both_sides_can_write(install_root: dict[str, str]) -> None:
    env = install_root
    result = subprocess.run([str(INSTALL), "freeswitch"], env={**os.environ, **env},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    user, pbx = env["TWIML_USER"], env["PBX_USER"]
    assert pbx in [g.gr_name for g in grp.getgrall() if user in g.gr_mem]
    assert pwd.getpwnam(user).pw_shell == "/usr/sbin/nologin"

    spool = Path(env["TWIML_SPOOL"])
    info = spool.stat()
    assert (pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name) == (pbx, pbx)
    assert stat.S_IMODE(info.st_mode) == 0o2770
    config = Path(env["TWIML_ETC"]) / "adapter.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert pwd.getpwuid(config.stat().st_uid).pw_name == user
    assert 'type = "freeswitch"' in config.read_text()
    assert load_config(config, {}).pbx == "freeswitch"
    dropin = Path(env["TWIML_SYSTEMD"]) / "twiml-adapter.service.d" / "pbx-group.conf"
    assert unit_settings(dropin.read_text())["SupplementaryGroups"] == ["", pbx]
    fs_dropin = Path(env["TWIML_SYSTEMD"]) / "freeswitch.service.d" / "twiml-umask.conf"
    assert unit_settings(fs_dropin.read_text())["UMask"] == ["0007"]

    # The adapter makes a call's folder, the PBX records into it, the adapter reads and removes
    # the file; then the PBX makes a folder (uuid_record does) and the adapter writes into it.
    call = spool / "recordings" / "CA1"
    assert as_user(user, f"mkdir -p {call}").returncode == 0
    assert grp.getgrgid(call.stat().st_gid).gr_name == pbx and call.stat().st_mode & stat.S_ISGID
    assert as_user(pbx, f"echo audio > {call}/RE1.wav").returncode == 0
    assert as_user(user, f"cat {call}/RE1.wav && rm {call}/RE1.wav").stdout == "audio\n"
    assert as_user(pbx, f"mkdir {spool}/recordings/CA2").returncode == 0
    written = as_user(user, f"echo x > {spool}/recordings/CA2/RE2.wav")
    assert written.returncode == 0, written.stderr
    other = as_user("nobody", f"ls {spool}")
    assert other.returncode != 0  # nobody else sees recordings

    again = subprocess.run([str(INSTALL), "freeswitch"], env={**os.environ, **env},
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # idempotent


def test_install_script_refuses_without_the_pbx_user(install_root: dict[str, str]) -> None:
    env = {**install_root, "PBX_USER": "twiml-pkg-absent", "PBX_GROUP": "twiml-pkg-absent"}
    result = subprocess.run([str(INSTALL), "asterisk"], env={**os.environ, **env},
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "install asterisk first" in result.stderr


def test_install_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is not installed (make setup installs it)")
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


MDWE_PROBE = """
import ctypes, subprocess, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # what MemoryDenyWriteExecute=yes enforces
assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0
import gevent, lxml.etree, asyncpg, greenswitch, aiohttp, uvicorn, sqlalchemy.ext.asyncio
import adapter.service, adapter.cli
from adapter.twiml import parse_document
parse_document(b"<Response><Say>hi</Say><Record/></Response>", "text/xml")
assert gevent.spawn(lambda: 7).get() == 7
mp3 = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                      "-i", "sine=duration=0.2", "-f", "mp3", "-"], capture_output=True)
assert mp3.returncode == 0 and mp3.stdout, mp3.stderr
print("mdwe ok")
"""


LOCAL_TRANSCRIPTION_PROBE = """
import asyncio, ctypes, subprocess, sys
from pathlib import Path
from adapter.transcription.local_whisper import LocalWhisperEngine, local_engine_problem
from adapter.transcription.engine import TranscriptionUnavailable
if sys.argv[1] == "mdwe":
    assert ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) == 0
wav = Path(sys.argv[2])
subprocess.run(["espeak-ng", "-w", str(wav), "Please call me back tomorrow."], check=True)
print("problem:", local_engine_problem(""))
async def main():
    engine = LocalWhisperEngine()
    try:
        print("text:", (await engine.transcribe(wav)).text)
    except TranscriptionUnavailable as exc:
        print("failed:", exc)
    await engine.close()
asyncio.run(main())
"""


@pytest.mark.parametrize("mdwe", ["mdwe", "plain"])
def test_local_transcription_needs_the_drop_in(mdwe: str, tmp_path: Path) -> None:
    """Why packaging/local-transcription.conf exists: under MemoryDenyWriteExecute (PR_SET_MDWE)
    CTranslate2 cannot run the code it generates, and the adapter says so at start (the
    problem line names the drop-in); without it the same model transcribes. The drop-in relaxes
    that one setting and nothing else."""
    result = subprocess.run(
        [sys.executable, "-c", LOCAL_TRANSCRIPTION_PROBE, mdwe, str(tmp_path / "s.wav")],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    if mdwe == "mdwe":
        assert "local-transcription.conf" in lines["problem"]
        assert "failed" in lines
    else:
        assert lines["problem"] == "None"
        assert "call me back tomorrow" in lines["text"].lower()
    drop_in = [line for line in (REPO / "packaging/local-transcription.conf").read_text()
               .splitlines() if line and not line.startswith("#")]
    assert drop_in == ["[Service]", "MemoryDenyWriteExecute=no"]


def test_adapter_runs_with_memory_deny_write_execute() -> None:
    """The unit's MemoryDenyWriteExecute=yes: the kernel's own switch (PR_SET_MDWE, Linux 6.3+,
    inherited by ffmpeg) set before the adapter's imports, a TwiML parse, a greenlet and an MP3
    encode."""
    result = subprocess.run([sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mdwe ok"
