"""The quick starts (docs/quickstart-asterisk.md): the document's code blocks are exactly the
steps of packaging/quickstart/asterisk.sh, and the script, run as root as a new admin would,
ends with a recorded SIP call on the test lab's real Asterisk 22: the dialplan and trunk
installed, the AMI user added, install.sh's user and setgid spool, a venv of this checkout, the
config from the sample, the adapter started as the systemd unit starts it (its user, groups and
umask, checked in /proc), sipp's call through pjsip_twiml.conf's trunk, the recording fetched
over the REST API and its signed callback received by the app.

The lab's Asterisk runs in a chroot under /root (0700), out of the adapter user's reach: the
spool is a folder under /tmp bind-mounted onto the chroot's /var/spool/asterisk/twiml, which is
what `spool_dir_local` is for."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from asterisk_lab import AsteriskLab, AsteriskPbx
from sipp import answered_uac, free_udp_port
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "quickstart" / "asterisk.sh"
DOC = REPO / "docs" / "quickstart-asterisk.md"
CALLER = REPO / "packaging" / "quickstart" / "caller.xml"
UNIT = REPO / "packaging" / "twiml-adapter.service"


def script_steps(text: str) -> list[str]:
    """The script's steps: the lines after each ``# --- <name>`` line, up to the next one."""
    steps: list[str] = []
    for part in re.split(r"^# --- .*\n", text, flags=re.M)[1:]:
        steps.append(part.strip("\n"))
    return steps


def doc_blocks(text: str) -> list[str]:
    return [block.strip("\n") for block in re.findall(r"^```sh\n(.*?)^```$", text,
                                                      flags=re.M | re.S)]


def test_the_document_shows_exactly_the_scripts_commands() -> None:
    steps = script_steps(SCRIPT.read_text())
    assert len(steps) == 8
    assert doc_blocks(DOC.read_text()) == steps


def test_the_caller_is_the_sip_suites_answered_caller() -> None:
    """caller.xml: sipp's own voice sample (sip-tester's g711a.pcap) as A-law, our BYE after 8 s;
    the scenario tests/support/sipp.py writes for the SIP suite."""
    expected = answered_uac(Path("/usr/share/sip-tester/g711a.pcap"), "PCMA",
                            hang_up_after_ms=8000)
    assert CALLER.read_text(encoding="ascii") == expected


def test_the_script_starts_the_adapter_as_the_unit_does() -> None:
    unit = UNIT.read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, flags=re.M)
    script = SCRIPT.read_text()
    assert "UMask=0007" in unit and "(umask 0007 && exec setpriv" in script
    assert "User=twiml-adapter" in unit and "--reuid=twiml-adapter --regid=twiml-adapter" in script
    assert exec_start == ("/opt/twiml-adapter/venv/bin/twiml-adapter serve "
                          "--config /etc/twiml-adapter/adapter.toml")
    assert '"$PREFIX/venv/bin/twiml-adapter" serve --config "$ETC/adapter.toml"' in script
    assert "PREFIX=${PREFIX:-/opt/twiml-adapter}" in script
    assert "ETC=${TWIML_ETC:-/etc/twiml-adapter}" in script


@pytest.fixture
def machine() -> Iterator[Path]:
    """A folder for the admin's paths (reachable by other users), and the host users the quick
    start needs: ``asterisk`` (Debian's Asterisk has it; the chroot lab's is not on the host) and
    ``twiml-adapter`` (install.sh creates it). Users created here are removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the quick start runs as root (CI does)")
    created = [name for name in ("asterisk", "twiml-adapter") if not _user_exists(name)]
    if "asterisk" in created:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "asterisk"], check=True)
    base = Path(tempfile.mkdtemp(prefix="twiml-quickstart-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for name in created:
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def bound_spool(asterisk_lab: AsteriskPbx, machine: Path) -> Iterator[Path]:
    """``machine/spool`` mounted onto the lab's spool (as Asterisk in its chroot sees it)."""
    assert isinstance(asterisk_lab, AsteriskLab), "the quick start runs on the chroot lab"
    spool = machine / "spool"
    spool.mkdir()
    target = asterisk_lab.spool_dir_local
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(spool), str(target)], check=True)
    try:
        yield spool
    finally:
        subprocess.run(["umount", str(target)], check=True)


def _stop(pid_file: Path) -> None:
    """SIGTERM to the adapter the script started (by its pid), and wait for its end: not our
    child (the script's background job), so through a pidfd, which becomes readable then."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        readable, _, _ = select.select([pidfd], [], [], 60)
        assert readable, f"the adapter (pid {pid}) did not stop within 60 s of SIGTERM"
    finally:
        os.close(pidfd)


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


async def test_the_quickstart_ends_with_a_recorded_call(
    asterisk_lab: AsteriskPbx, app: TwimlApp, machine: Path, bound_spool: Path
) -> None:
    assert isinstance(asterisk_lab, AsteriskLab)
    response = VoiceResponse()
    response.say("Please leave a message after the beep.")
    response.record(recording_status_callback="/status", timeout=3, max_length=20,
                    action="/done")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    http = f"127.0.0.1:{free_udp_port()}"
    data = machine / "data"
    environ = {
        **os.environ,
        "ASTERISK_ETC": str(asterisk_lab.local_path("/etc/asterisk")),
        "ASTERISK_RX": f"chroot {asterisk_lab.root} /usr/sbin/asterisk -rx",
        "AMI_PORT": str(asterisk_lab.ami_port),
        "SPOOL": str(bound_spool),
        "ACCOUNT_SID": ACCOUNT_SID, "AUTH_TOKEN": AUTH_TOKEN,
        "VOICE_URL": app.url("/voice"), "HTTP_LISTEN": http,
        "SIP_TRUNK": "{}:{}".format(*asterisk_lab.sip_address),
        "PREFIX": str(machine / "opt"), "TWIML_ETC": str(machine / "etc"),
        "TWIML_DATA": str(data),
        "SIPP_PORT": str(free_udp_port()), "SIPP_MEDIA_PORT": str(free_udp_port()),
        "DEBIAN_FRONTEND": "noninteractive",
    }
    process = await asyncio.create_subprocess_exec(
        "bash", str(SCRIPT), cwd=REPO, env=environ, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 900)
        text = output.decode(errors="replace")
        log = (data / "adapter.log").read_text() if (data / "adapter.log").exists() else ""
        assert process.returncode == 0, text[-4000:] + log[-4000:]
        assert "recorded: " in text

        pid = int((data / "adapter.pid").read_text())
        status = _proc_status(pid)
        adapter_user, asterisk_group = pwd.getpwnam("twiml-adapter"), grp.getgrnam("asterisk")
        assert status["Uid"].split()[0] == str(adapter_user.pw_uid)
        assert status["Umask"] == "0007"
        assert str(asterisk_group.gr_gid) in status["Groups"].split()

        voice = app.received("/voice")[0]
        assert voice.signature_valid and voice.params["To"] == "15557650000"
        await app.next_request("/status", within=30)
        (completed,) = [r for r in app.received("/status")
                        if r.params["RecordingStatus"] == "completed"]
        assert completed.signature_valid
        sid = completed.params["RecordingSid"]
        assert f"/Recordings/{sid}.wav" in text
        with wave.open(str(data / "first-call.wav")) as recording:
            assert recording.getnframes() / recording.getframerate() >= 1.0
        (call_folder,) = (bound_spool / "recordings").iterdir()
        assert call_folder.stat().st_gid == asterisk_group.gr_gid
        assert call_folder.stat().st_mode & 0o2070 == 0o2070  # setgid, group rwx
        config = machine / "etc" / "adapter.toml"
        assert config.stat().st_mode & 0o777 == 0o600
    finally:
        _stop(data / "adapter.pid")
