"""The quick starts (docs/quickstart-asterisk.md, docs/quickstart-freeswitch.md): each document's
code blocks are exactly the steps of its script (packaging/quickstart/asterisk.sh,
freeswitch.sh), and each script, run as root as a new admin would, ends with a recorded SIP call
on a real PBX (the test lab's Asterisk 22; a FreeSWITCH 1.10.12 of this test's own): the
dialplan (and for Asterisk the trunk and the AMI user) installed, install.sh's user and setgid
spool, a venv of this checkout, the config from the sample, the adapter started as the systemd
unit starts it (its user, groups and umask, checked in /proc), sipp's call through the PBX's
trunk, the recording fetched over the REST API and its signed callback received by the app.

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
from typing import TYPE_CHECKING, Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from asterisk_lab import AsteriskLab, AsteriskPbx
from sipp import answered_uac, free_udp_port
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

if TYPE_CHECKING:
    from freeswitch_lab import FreeSwitchStack

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "packaging" / "quickstart"
PBXS = ["asterisk", "freeswitch"]
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


@pytest.mark.parametrize("pbx", PBXS)
def test_the_document_shows_exactly_the_scripts_commands(pbx: str) -> None:
    steps = script_steps((QUICKSTART / f"{pbx}.sh").read_text())
    assert len(steps) == 8
    assert doc_blocks((REPO / "docs" / f"quickstart-{pbx}.md").read_text()) == steps


def test_the_caller_is_the_sip_suites_answered_caller() -> None:
    """caller.xml: sipp's own voice sample (sip-tester's g711a.pcap) as A-law, our BYE after 8 s;
    the scenario tests/support/sipp.py writes for the SIP suite."""
    expected = answered_uac(Path("/usr/share/sip-tester/g711a.pcap"), "PCMA",
                            hang_up_after_ms=8000)
    assert CALLER.read_text(encoding="ascii") == expected


@pytest.mark.parametrize("pbx", PBXS)
def test_the_script_starts_the_adapter_as_the_unit_does(pbx: str) -> None:
    unit = UNIT.read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, flags=re.M)
    script = (QUICKSTART / f"{pbx}.sh").read_text()
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
    start needs: ``asterisk`` and ``freeswitch`` (Debian's Asterisk package and a FreeSWITCH
    install have them; the test PBXs run as root and have none on the host) and
    ``twiml-adapter`` (install.sh creates it). Users created here are removed afterwards."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the quick start as root")
        pytest.skip("the quick start runs as root (CI does)")
    created = [name for name in ("asterisk", "freeswitch", "twiml-adapter")
               if not _user_exists(name)]
    for name in set(created) - {"twiml-adapter"}:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", name], check=True)
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


def voicemail(app: TwimlApp) -> None:
    """The admin's first app: a greeting and a <Record> with its status callback."""
    response = VoiceResponse()
    response.say("Please leave a message after the beep.")
    response.record(recording_status_callback="/status", timeout=3, max_length=20,
                    action="/done")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())


def common_environ(app: TwimlApp, machine: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ACCOUNT_SID": ACCOUNT_SID, "AUTH_TOKEN": AUTH_TOKEN,
        "VOICE_URL": app.url("/voice"), "HTTP_LISTEN": f"127.0.0.1:{free_udp_port()}",
        "PREFIX": str(machine / "opt"), "TWIML_ETC": str(machine / "etc"),
        "TWIML_DATA": str(machine / "data"),
        "SIPP_PORT": str(free_udp_port()), "SIPP_MEDIA_PORT": str(free_udp_port()),
        "DEBIAN_FRONTEND": "noninteractive",
    }


async def run_quickstart(pbx: str, environ: dict[str, str], app: TwimlApp, machine: Path,
                         spool: Path) -> None:
    """Runs the script; then checks the adapter's process, the recording and its callback."""
    data = machine / "data"
    process = await asyncio.create_subprocess_exec(
        "bash", str(QUICKSTART / f"{pbx}.sh"), cwd=REPO, env=environ,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 900)
        text = output.decode(errors="replace")
        log = (data / "adapter.log").read_text() if (data / "adapter.log").exists() else ""
        assert process.returncode == 0, text[-4000:] + log[-4000:]
        assert "recorded: " in text

        pid = int((data / "adapter.pid").read_text())
        status = _proc_status(pid)
        adapter_user, pbx_group = pwd.getpwnam("twiml-adapter"), grp.getgrnam(pbx)
        assert status["Uid"].split()[0] == str(adapter_user.pw_uid)
        assert status["Umask"] == "0007"
        assert str(pbx_group.gr_gid) in status["Groups"].split()

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
        (call_folder,) = (spool / "recordings").iterdir()
        assert call_folder.stat().st_gid == pbx_group.gr_gid
        assert call_folder.stat().st_mode & 0o2070 == 0o2070  # setgid, group rwx
        config = machine / "etc" / "adapter.toml"
        assert config.stat().st_mode & 0o777 == 0o600
    finally:
        _stop(data / "adapter.pid")


async def test_the_asterisk_quickstart_ends_with_a_recorded_call(
    asterisk_lab: AsteriskPbx, app: TwimlApp, machine: Path, bound_spool: Path
) -> None:
    assert isinstance(asterisk_lab, AsteriskLab)
    voicemail(app)
    environ = {
        **common_environ(app, machine),
        "ASTERISK_ETC": str(asterisk_lab.local_path("/etc/asterisk")),
        "ASTERISK_RX": f"chroot {asterisk_lab.root} /usr/sbin/asterisk -rx",
        "AMI_PORT": str(asterisk_lab.ami_port),
        "SPOOL": str(bound_spool),
        "SIP_TRUNK": "{}:{}".format(*asterisk_lab.sip_address),
    }
    await run_quickstart("asterisk", environ, app, machine, bound_spool)


@pytest.fixture
def own_freeswitch(machine: Path) -> Iterator[tuple[Any, FreeSwitchStack]]:
    """A FreeSWITCH of this test's own (the session's keeps its configuration and spool in
    pytest's 0700 folder): the build of docker/provision-freeswitch.sh with our shipped
    configuration, whose Sofia profile "trunk" sends calls into the context twiml."""
    from freeswitch_local import LocalFreeSwitch

    switch = LocalFreeSwitch.for_session(machine / "freeswitch")
    with switch as stack:
        yield switch, stack


async def test_the_freeswitch_quickstart_ends_with_a_recorded_call(
    app: TwimlApp, machine: Path, own_freeswitch: tuple[Any, FreeSwitchStack]
) -> None:
    switch, stack = own_freeswitch
    voicemail(app)
    environ = {
        **common_environ(app, machine),
        "FS_CONF": str(switch.conf),
        "ESL_PORT": str(stack.esl_port), "ESL_PASSWORD": stack.esl_password,
        "FS_CLI": f"{switch.root}/bin/fs_cli -H 127.0.0.1 -P {stack.esl_port} "
                  f"-p {stack.esl_password} -x",
        "ADAPTER_SOCKET": "{}:{}".format(*stack.socket_address),
        "SPOOL": str(machine / "spool"),
        "SIP_TRUNK": "{}:{}".format(*stack.sip_address),
    }
    await run_quickstart("freeswitch", environ, app, machine, machine / "spool")
