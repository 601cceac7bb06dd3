"""A real Asterisk 22 for the test suite, and the test callers that phone the adapter.

Two ways to get the Asterisk, both behind the same interface (:class:`AsteriskPbx`):

* :class:`AsteriskLab` (the default, and the only one our machines can run): Asterisk from Debian
  sid in an mmdebstrap root (``docker/provision-asterisk.sh``), started with ``chroot`` on the
  host's loopback. Every start writes a fresh ``/etc/asterisk`` into the root: the shared files
  of ``docker/asterisk/etc/``, an ``asterisk.conf`` built from the Debian sample, a
  ``manager.conf`` with user ``adapter``, a random secret and a free port, the project's
  dialplan under ``twiml/``, the test callers under ``local/`` and, as ``pjsip.conf``, the
  PJSIP trunk of ``dialplan/asterisk/pjsip_twiml.conf`` on a free UDP port (``sip_address``).
* :class:`ComposeAsterisk`: the ``asterisk`` service of ``docker/compose.yml`` on hosts with a
  Docker engine (``TWIML_TEST_PBX=compose``).

Test callers
------------
A call is an AMI ``Originate`` of ``Local/<script>@twiml-test-callers`` into context ``twiml``,
extension ``To`` (see :func:`originate`). The ``;1`` half runs ``[twiml]``, the adapter's side;
the ``;2`` half runs the caller script below. Silence is always *real* silent frames
(``Playback(silence/N)``), never ``Wait()``: Asterisk's silence detection only counts frames it
receives. Durations are whole seconds.

=============== ===================================================== =========================
script          what the caller does                                  variables (default)
=============== ===================================================== =========================
speak_silence   LEAD_S of silence, speech (6.1 s), SILENCE_S of       LEAD_S (1), SILENCE_S (10)
                silence, hangs up
speak_dtmf      LEAD_S of silence, speech, sends DIGITS, SILENCE_S    LEAD_S (1), DIGITS (#),
                of silence, hangs up                                  SILENCE_S (10)
speak_hangup    LEAD_S of silence, speech, hangs up at once           LEAD_S (1)
speak_file      LEAD_S of silence, plays FILE (a sound path without   FILE, LEAD_S (1),
                its extension), sends DIGITS, SILENCE_S of silence,   DIGITS (#), SILENCE_S (10)
                hangs up
keys            LEAD_S of silence, sends DIGITS (``w`` 0.5 s, ``W``     LEAD_S (1), DIGITS (#),
                1 s of pause), SILENCE_S of silence, hangs up         SILENCE_S (10)
silent          SILENCE_S of silence, hangs up                        SILENCE_S (10)
speak_loop      speech over and over; hangs up after DURATION_S       DURATION_S (30)
tone440         440 Hz tone without a gap; hangs up after DURATION_S  DURATION_S (30)
=============== ===================================================== =========================

Every script first starts ``MixMonitor(,r(${HEARD}))`` on its own channel: the file ``HEARD``
(an absolute path, default ``/var/spool/asterisk/twiml/heard/<caller uniqueid>.wav``) holds
what the caller *hears*, i.e. the audio the adapter's side sends (beeps, prompts). When the
caller's channel closes the file, the global variable ``TWIML_TEST_HEARD_CLOSED`` is set to its
path, which shows up as an AMI ``VarSet`` event (see :func:`wait_heard_closed`).

Test audio, generated once per root into ``/var/lib/asterisk/sounds/twiml-test/``:
``speech.wav`` (espeak-ng, 6.1 s), ``tone440-20s.wav`` and ``tone1000-20s.wav``, all 8 kHz mono
16-bit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self
from urllib.parse import unquote

from panoramisk import Manager
from panoramisk.actions import Action

__all__ = [
    "AMI_USERNAME",
    "CALLEES_CONTEXT",
    "CALLEE_BUSY",
    "CALLEE_LONG",
    "CALLEE_NO_ANSWER",
    "CALLEE_RINGS_2S",
    "CALLEE_TONE1000",
    "CALLERS_CONTEXT",
    "HEARD_CLOSED_VARIABLE",
    "LIMITED_AMI_USERNAME",
    "LIMITED_AMI_WRITE",
    "PJSIP_EXAMPLE",
    "SPOOL_DIR",
    "TEST_SOUNDS_DIR",
    "AmiEventLog",
    "AsteriskLab",
    "AsteriskPbx",
    "CallerScript",
    "ComposeAsterisk",
    "agi_command",
    "connect_ami",
    "decode_agi_env",
    "default_root",
    "generate_test_sounds",
    "is_provisioned",
    "originate",
    "provision_root",
    "render_asterisk_conf",
    "render_manager_conf",
    "render_pjsip_conf",
    "render_test_callers",
    "wait_heard_closed",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_ETC = REPO_ROOT / "docker" / "asterisk" / "etc"
DIALPLAN_DIR = REPO_ROOT / "dialplan" / "asterisk"
# The shipped PJSIP trunk example; the lab's pjsip.conf is this file with only the port changed.
PJSIP_EXAMPLE = DIALPLAN_DIR / "pjsip_twiml.conf"
PJSIP_EXAMPLE_BIND = "bind = 127.0.0.1:5060"
PROVISION_SCRIPT = REPO_ROOT / "docker" / "provision-asterisk.sh"

AMI_USERNAME = "adapter"
HARNESS_AMI_USERNAME = "harness"
# A third user, like the adapter's but without the call and originate write privileges (the
# start-up check that names missing privileges: tests/service/test_startup_errors.py).
LIMITED_AMI_USERNAME = "limited"
LIMITED_AMI_WRITE = "system,agi"
# The adapter's AMI privileges, as documented in docs/asterisk.md ("manager.conf").
ADAPTER_AMI_READ = "system,call,agi,dtmf"
ADAPTER_AMI_WRITE = "system,call,agi,originate"
SPOOL_DIR = "/var/spool/asterisk/twiml"
TEST_SOUNDS_DIR = "/var/lib/asterisk/sounds/twiml-test"
CALLERS_CONTEXT = "twiml-test-callers"
CALLEES_CONTEXT = "twiml-test-callees"
CALLEE_TONE1000 = "2000"
CALLEE_BUSY = "2001"
CALLEE_NO_ANSWER = "2002"
CALLEE_LONG = "2003"
CALLEE_RINGS_2S = "2008"
HEARD_CLOSED_VARIABLE = "TWIML_TEST_HEARD_CLOSED"
SPEECH_TEXT = (
    "Hello, this is a test caller speaking. "
    "Please record this message and call me back as soon as you can."
)
BOOT_TIMEOUT_S = 20.0


class CallerScript(StrEnum):
    """The caller scripts of ``[twiml-test-callers]`` (see the module docstring)."""

    SPEAK_SILENCE = "speak_silence"
    SPEAK_DTMF = "speak_dtmf"
    SPEAK_HANGUP = "speak_hangup"
    SPEAK_FILE = "speak_file"
    KEYS = "keys"
    SILENT = "silent"
    SPEAK_LOOP = "speak_loop"
    TONE440 = "tone440"


class AsteriskPbx(Protocol):
    """What tests may use of a running Asterisk, however it was started."""

    @property
    def ami_host(self) -> str: ...
    @property
    def ami_port(self) -> int: ...
    @property
    def ami_username(self) -> str: ...
    @property
    def ami_secret(self) -> str: ...
    @property
    def root(self) -> Path | None: ...
    @property
    def spool_dir(self) -> str: ...
    @property
    def spool_dir_local(self) -> Path: ...

    def cli(self, command: str) -> str: ...
    def hangup_all(self) -> None: ...
    def log_text(self) -> str: ...
    def local_path(self, path: str) -> Path: ...


# --------------------------------------------------------------------------------------------
# configuration text


def render_asterisk_conf(debian_sample: str) -> str:
    """asterisk.conf: the Debian ``[directories]`` block (made effective) plus ``[options]``."""
    lines = ["; written by tests/labs/asterisk_lab.py", "[directories]"]
    inside = False
    for raw in debian_sample.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line.startswith("[directories]")
            continue
        if inside and "=>" in line and not line.startswith(";"):
            lines.append(line)
    if len(lines) < 3:
        raise ValueError("no [directories] entries in the Debian asterisk.conf sample")
    lines += ["", "[options]", "verbose = 3", "debug = 0", ""]
    return "\n".join(lines)


def render_manager_conf(
    *, username: str, secret: str, bindaddr: str, port: int, permit: str
) -> str:
    """manager.conf with three AMI users sharing one secret.

    - `username` (the adapter) has exactly the privileges docs/asterisk.md asks for, so every
      adapter test proves that list is enough;
    - ``harness`` (the test side: Originate, hang-ups, event watching) may do everything;
    - ``limited`` lacks the write privileges call and originate.
    """
    return (
        "; written by tests/labs/asterisk_lab.py\n"
        "[general]\n"
        "enabled = yes\n"
        f"port = {port}\n"
        f"bindaddr = {bindaddr}\n"
        "displayconnects = yes\n"
        "\n"
        f"[{username}]\n"
        f"secret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        f"permit = {permit}\n"
        f"read = {ADAPTER_AMI_READ}\n"
        f"write = {ADAPTER_AMI_WRITE}\n"
        "writetimeout = 5000\n"
        "\n"
        f"[{HARNESS_AMI_USERNAME}]\n"
        f"secret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        f"permit = {permit}\n"
        "read = all\n"
        "write = all\n"
        "writetimeout = 5000\n"
        "\n"
        f"[{LIMITED_AMI_USERNAME}]\n"
        f"secret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        f"permit = {permit}\n"
        f"read = {ADAPTER_AMI_READ}\n"
        f"write = {LIMITED_AMI_WRITE}\n"
        "writetimeout = 5000\n"
    )


def render_test_callers(*, sounds_dir: str = TEST_SOUNDS_DIR, spool_dir: str = SPOOL_DIR) -> str:
    """The dialplan of the test callers (``[twiml-test-callers]`` and its subroutines)."""
    lib = f"{CALLERS_CONTEXT}-lib"
    start = f"Gosub({lib},start,1)"

    def silence(var: str) -> str:
        return f"Gosub({lib},silence,1(${{{var}}}))"

    speech = f"Playback({sounds_dir}/speech)"
    announce_closed = f"asterisk -rx 'dialplan set global {HEARD_CLOSED_VARIABLE} ${{HEARD}}'"
    return f"""; written by tests/labs/asterisk_lab.py: the test callers (see its docstring)

[{lib}]
; start: answer, fill in defaults, record what the caller hears into ${{HEARD}}
exten => start,1,Answer()
 same => n,ExecIf($["${{HEARD}}" = ""]?Set(HEARD={spool_dir}/heard/${{UNIQUEID}}.wav))
 same => n,ExecIf($["${{LEAD_S}}" = ""]?Set(LEAD_S=1))
 same => n,ExecIf($["${{SILENCE_S}}" = ""]?Set(SILENCE_S=10))
 same => n,ExecIf($["${{DIGITS}}" = ""]?Set(DIGITS=#))
 same => n,ExecIf($["${{DURATION_S}}" = ""]?Set(DURATION_S=30))
 same => n,MixMonitor(,r(${{HEARD}}),{announce_closed})
 same => n,Return()

; silence,1(N): N seconds of real silent frames
exten => silence,1,Set(LOCAL(left)=${{ARG1}})
 same => n(loop),GotoIf($[${{left}} < 1]?done)
 same => n,GotoIf($[${{left}} < 10]?short)
 same => n,Playback(silence/10)
 same => n,Set(LOCAL(left)=$[${{left}} - 10])
 same => n,Goto(loop)
 same => n(short),Playback(silence/${{left}})
 same => n(done),Return()

[{CALLERS_CONTEXT}]
exten => {CallerScript.SPEAK_SILENCE},1,{start}
 same => n,{silence("LEAD_S")}
 same => n,{speech}
 same => n,{silence("SILENCE_S")}
 same => n,Hangup()

exten => {CallerScript.SPEAK_DTMF},1,{start}
 same => n,{silence("LEAD_S")}
 same => n,{speech}
 same => n,SendDTMF(${{DIGITS}})
 same => n,{silence("SILENCE_S")}
 same => n,Hangup()

exten => {CallerScript.SPEAK_HANGUP},1,{start}
 same => n,{silence("LEAD_S")}
 same => n,{speech}
 same => n,Hangup()

exten => {CallerScript.SPEAK_FILE},1,{start}
 same => n,{silence("LEAD_S")}
 same => n,Playback(${{FILE}})
 same => n,SendDTMF(${{DIGITS}})
 same => n,{silence("SILENCE_S")}
 same => n,Hangup()

exten => {CallerScript.KEYS},1,{start}
 same => n,{silence("LEAD_S")}
 same => n,SendDTMF(${{DIGITS}})
 same => n,{silence("SILENCE_S")}
 same => n,Hangup()

exten => {CallerScript.SILENT},1,{start}
 same => n,{silence("SILENCE_S")}
 same => n,Hangup()

exten => {CallerScript.SPEAK_LOOP},1,{start}
 same => n,Set(TIMEOUT(absolute)=${{DURATION_S}})
 same => n(top),{speech}
 same => n,Goto(top)

exten => {CallerScript.TONE440},1,{start}
 same => n,Set(TIMEOUT(absolute)=${{DURATION_S}})
 same => n(top),Playback({sounds_dir}/tone440-20s)
 same => n,Goto(top)

; The parties a <Dial> reaches (adapter setting asterisk.dial_number =
; Local/{{number}}@{CALLEES_CONTEXT}): 2000 answers and plays 1000 Hz for 4 s, then hangs up;
; 2001 is busy; 2002 rings and never answers; 2003 answers and plays 1000 Hz for 60 s; 2008
; rings 2 s, answers, plays 1000 Hz for 3 s and hangs up.
[{CALLEES_CONTEXT}]
exten => {CALLEE_TONE1000},1,Answer()
 same => n,Set(TIMEOUT(absolute)=4)
 same => n(top),Playback({sounds_dir}/tone1000-20s)
 same => n,Goto(top)

; <Dial><Sip>sip:2000@{CALLEES_CONTEXT}</Sip> arrives here (asterisk.dial_sip = Local/{{uri}})
exten => sip:{CALLEE_TONE1000},1,Goto({CALLEE_TONE1000},1)

exten => {CALLEE_BUSY},1,Busy(10)

exten => {CALLEE_NO_ANSWER},1,Ringing()
 same => n,Wait(120)

exten => {CALLEE_LONG},1,Answer()
 same => n,Set(TIMEOUT(absolute)=60)
 same => n(top),Playback({sounds_dir}/tone1000-20s)
 same => n,Goto(top)

exten => {CALLEE_RINGS_2S},1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Set(TIMEOUT(absolute)=3)
 same => n(top),Playback({sounds_dir}/tone1000-20s)
 same => n,Goto(top)
"""


# --------------------------------------------------------------------------------------------
# test audio


def generate_test_sounds(folder: Path) -> None:
    """Write speech.wav, tone440-20s.wav and tone1000-20s.wav (8 kHz mono 16-bit) if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    pcm = ["-r", "8000", "-c", "1", "-b", "16"]
    speech = folder / "speech.wav"
    if not speech.exists():
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "espeak.wav"
            _run(["espeak-ng", "-v", "en-us", "-w", str(raw), SPEECH_TEXT])
            _run(["sox", str(raw), *pcm, str(folder / "speech.tmp.wav")])
        (folder / "speech.tmp.wav").replace(speech)
    for hz in (440, 1000):
        tone = folder / f"tone{hz}-20s.wav"
        if not tone.exists():
            part = folder / f"tone{hz}-20s.tmp.wav"
            _run(["sox", "-n", *pcm, str(part), "synth", "20", "sine", str(hz), "gain", "-6"])
            part.replace(tone)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr}")


# --------------------------------------------------------------------------------------------
# the chroot lab


def default_root() -> Path:
    """``$TWIML_ASTERISK_ROOT``, else ``~/.cache/twiml-pbx-adapter/asterisk-root``."""
    explicit = os.environ.get("TWIML_ASTERISK_ROOT")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "twiml-pbx-adapter" / "asterisk-root"


def is_provisioned(root: Path) -> bool:
    return (root / "usr/sbin/asterisk").exists() and (root / ".provisioned").is_file()


def provision_root(root: Path) -> None:
    """Build the root with docker/provision-asterisk.sh unless it is already there."""
    if is_provisioned(root):
        return
    done = subprocess.run(
        [str(PROVISION_SCRIPT), str(root)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not is_provisioned(root):
        raise RuntimeError(
            f"provisioning the Asterisk root {root} failed ({done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def render_pjsip_conf(example: str, port: int) -> str:
    """The lab's pjsip.conf: the shipped trunk example with its transport on `port`."""
    if example.count(PJSIP_EXAMPLE_BIND) != 1:
        raise ValueError(f"the PJSIP example has no single {PJSIP_EXAMPLE_BIND!r} line")
    return example.replace(PJSIP_EXAMPLE_BIND, f"bind = 127.0.0.1:{port}")


def _channel_count(cli_output: str) -> int:
    match = re.search(r"(\d+) active channels?", cli_output)
    if match is None:
        raise RuntimeError(f"unexpected 'core show channels count' output: {cli_output!r}")
    return int(match.group(1))


class _CliHangup:
    """hangup_all() for anything with cli()."""

    def cli(self, command: str) -> str:
        raise NotImplementedError

    def hangup_all(self) -> None:
        """Hang up every channel and wait until none is left (10 s, else RuntimeError)."""
        self.cli("channel request hangup all")
        deadline = time.monotonic() + 10.0
        while _channel_count(self.cli("core show channels count")) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "channels still up after hangup: " + self.cli("core show channels concise")
                )
            time.sleep(0.05)


class AsteriskLab(_CliHangup):
    """Asterisk 22 running in a provisioned sid root with chroot, AMI on 127.0.0.1.

    Needs root (chroot). One instance per root at a time: ``start()`` takes an exclusive lock
    on ``<root>/.twiml-asterisk-lab.lock`` (waiting up to ``lock_timeout`` seconds) and stops
    an Asterisk left running in the root by a killed session. The console log goes to
    ``<work>/asterisk-console.log``; ``<root>/var/spool/asterisk/twiml`` is emptied on start.
    """

    def __init__(
        self,
        root: Path,
        work: Path,
        *,
        dialplan_dir: Path = DIALPLAN_DIR,
        lock_timeout: float = 120.0,
    ) -> None:
        self._root = root.resolve()
        self.work = work
        self.dialplan_dir = dialplan_dir
        self.lock_timeout = lock_timeout
        self._ami_port: int | None = None
        self._sip_port: int | None = None
        self._ami_secret = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None
        self._lock: IO[str] | None = None

    # -- interface ---------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def ami_host(self) -> str:
        return "127.0.0.1"

    @property
    def ami_port(self) -> int:
        if self._ami_port is None:
            raise RuntimeError("the Asterisk lab is not started")
        return self._ami_port

    @property
    def ami_username(self) -> str:
        return AMI_USERNAME

    @property
    def ami_secret(self) -> str:
        return self._ami_secret

    @property
    def sip_address(self) -> tuple[str, int]:
        """Where the PJSIP trunk (dialplan/asterisk/pjsip_twiml.conf) listens, UDP."""
        if self._sip_port is None:
            raise RuntimeError("the Asterisk lab is not started")
        return "127.0.0.1", self._sip_port

    @property
    def spool_dir(self) -> str:
        return SPOOL_DIR

    @property
    def spool_dir_local(self) -> Path:
        return self.local_path(SPOOL_DIR)

    @property
    def console_log(self) -> Path:
        return self.work / "asterisk-console.log"

    def local_path(self, path: str) -> Path:
        """The host path of an absolute path inside the Asterisk root."""
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path!r}")
        return self._root / path.lstrip("/")

    def cli(self, command: str) -> str:
        """Run one Asterisk CLI command (``asterisk -rx``) and return its output."""
        done = self._rx(command, timeout=30.0)
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def log_text(self) -> str:
        if not self.console_log.exists():
            return ""
        return self.console_log.read_text(errors="replace")

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("the Asterisk lab is already started")
        if not is_provisioned(self._root):
            raise RuntimeError(f"{self._root} is not a provisioned Asterisk root")
        self._acquire_lock()
        try:
            self._stop_leftover()
            self._ami_port = _free_port()
            self._sip_port = _free_udp_port()
            self._ami_secret = secrets.token_hex(16)
            self._write_config()
            generate_test_sounds(self.local_path(TEST_SOUNDS_DIR))
            shutil.rmtree(self.spool_dir_local, ignore_errors=True)
            self.spool_dir_local.mkdir(parents=True)
            self._launch()
            self._wait_fully_booted()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """``core stop now``; kill the process group if it is still alive after 15 s."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._rx("core stop now", timeout=15.0)
            try:
                process.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10.0)
        self._process = None
        if self._console is not None:
            self._console.close()
            self._console = None
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    # -- internals ---------------------------------------------------------------------------

    def _rx(self, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["chroot", str(self._root), "/usr/sbin/asterisk", "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _acquire_lock(self) -> None:
        handle = (self._root / ".twiml-asterisk-lab.lock").open("a+")
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise RuntimeError(
                        f"another Asterisk lab (pid {holder}) holds {self._root}; "
                        f"tests that need Asterisk run one session at a time"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _processes_in_root(self) -> list[int]:
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == str(self._root):
                    found.append(int(entry.name))
        return found

    def _stop_leftover(self) -> None:
        """Stop an Asterisk a killed session left running in this root (we hold the lock)."""
        if not self._processes_in_root():
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._rx("core stop now", timeout=15.0)
        deadline = time.monotonic() + 10.0
        while (left := self._processes_in_root()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _write_config(self) -> None:
        etc = self.local_path("/etc/asterisk")
        dist = self.local_path("/etc/asterisk.dist")
        shutil.rmtree(etc, ignore_errors=True)
        etc.mkdir()
        for shared in sorted(SHARED_ETC.glob("*.conf")):
            shutil.copyfile(shared, etc / shared.name)
        sample = (dist / "asterisk.conf").read_text()
        (etc / "asterisk.conf").write_text(render_asterisk_conf(sample))
        shutil.copyfile(dist / "indications.conf", etc / "indications.conf")
        manager = render_manager_conf(
            username=AMI_USERNAME,
            secret=self._ami_secret,
            bindaddr="127.0.0.1",
            port=self.ami_port,
            permit="127.0.0.1/255.255.255.255",
        )
        (etc / "manager.conf").write_text(manager)
        (etc / "manager.conf").chmod(0o600)
        shutil.copytree(self.dialplan_dir, etc / "twiml")
        pjsip = render_pjsip_conf(PJSIP_EXAMPLE.read_text(), self.sip_address[1])
        (etc / "pjsip.conf").write_text(pjsip)
        (etc / "local").mkdir()
        (etc / "local" / "twiml-test-callers.conf").write_text(render_test_callers())

    def _launch(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.local_path("/run/asterisk").mkdir(parents=True, exist_ok=True)
        self._console = self.console_log.open("wb")
        # start_new_session: the same as `setsid`; stop() can kill the whole group.
        self._process = subprocess.Popen(
            ["chroot", str(self._root), "/usr/sbin/asterisk", "-f", "-n"],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_fully_booted(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Asterisk exited with {self._process.returncode} while booting:\n"
                    + self.log_text()[-4000:]
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self._rx("core waitfullybooted", timeout=5.0).returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Asterisk not fully booted after {BOOT_TIMEOUT_S} s:\n"
                    + self.log_text()[-4000:]
                )
            time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# the compose stack


class ComposeAsterisk(_CliHangup):
    """The ``asterisk`` service of docker/compose.yml (already up), seen from the host.

    ``local_dir`` is the host folder compose mounts for local additions
    (``$TWIML_ASTERISK_LOCAL``): :meth:`prepare_local` writes the test callers and the test
    audio there *before* ``docker compose up``.
    """

    def __init__(
        self,
        *,
        compose_file: Path,
        project: str,
        ami_port: int,
        ami_secret: str,
        spool_dir_local: Path,
    ) -> None:
        self.compose_file = compose_file
        self.project = project
        self._ami_port = ami_port
        self._ami_secret = ami_secret
        self._spool_dir_local = spool_dir_local

    @staticmethod
    def prepare_local(local_dir: Path) -> None:
        (local_dir / "conf").mkdir(parents=True, exist_ok=True)
        (local_dir / "conf" / "twiml-test-callers.conf").write_text(render_test_callers())
        generate_test_sounds(local_dir / "sounds")

    @property
    def root(self) -> Path | None:
        return None

    @property
    def ami_host(self) -> str:
        return "127.0.0.1"

    @property
    def ami_port(self) -> int:
        return self._ami_port

    @property
    def ami_username(self) -> str:
        return AMI_USERNAME

    @property
    def ami_secret(self) -> str:
        return self._ami_secret

    @property
    def spool_dir(self) -> str:
        return SPOOL_DIR

    @property
    def spool_dir_local(self) -> Path:
        return self._spool_dir_local

    def local_path(self, path: str) -> Path:
        """The host path of a file in the shared spool (the only folder shared with the host)."""
        prefix = SPOOL_DIR + "/"
        if not path.startswith(prefix):
            raise ValueError(f"{path!r} is not under {SPOOL_DIR}, so the host cannot see it")
        return self._spool_dir_local / path[len(prefix) :]

    def _compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def cli(self, command: str) -> str:
        done = self._compose("exec", "-T", "asterisk", "asterisk", "-rx", command)
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def log_text(self) -> str:
        return self._compose("logs", "--no-color", "asterisk").stdout


# --------------------------------------------------------------------------------------------
# AMI helpers (panoramisk 1.4; see docs/asterisk.md for its quirks)


async def connect_ami(pbx: AsteriskPbx, *, events: str = "on") -> Any:
    """A connected panoramisk ``Manager``, logged in; RuntimeError if the login fails."""
    manager = Manager(
        loop=asyncio.get_running_loop(),
        host=pbx.ami_host,
        port=pbx.ami_port,
        username=HARNESS_AMI_USERNAME,
        secret=pbx.ami_secret,
        events=events,
    )
    await manager.connect()
    pending = manager.authenticated_future
    if pending is not None:
        await asyncio.wait_for(pending, timeout=10.0)
    if not manager.authenticated:
        manager.close()
        raise RuntimeError(f"AMI login as {HARNESS_AMI_USERNAME} on port {pbx.ami_port} failed")
    return manager


class AmiEventLog:
    """Every event one Manager receives, in order, with a race-free ``wait_for``."""

    def __init__(self, manager: Any) -> None:
        self.events: list[Any] = []
        self._waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        manager.register_event("*", self._on_event)

    def _on_event(self, _manager: Any, event: Any) -> None:
        self.events.append(event)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(event):
                future.set_result(event)

    def matching(self, name: str, where: Callable[[Any], bool] | None = None) -> list[Any]:
        return [e for e in self.events if _matches(e, name, where)]

    async def wait_for(
        self, name: str, where: Callable[[Any], bool] | None = None, *, within: float = 10.0
    ) -> Any:
        """The first event called ``name`` (satisfying ``where``), already seen or still to come."""
        for event in self.events:
            if _matches(event, name, where):
                return event
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiter = (lambda e: _matches(e, name, where), future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            seen = ", ".join(str(e.get("Event")) for e in self.events[-30:])
            raise AssertionError(f"no {name} event within {within} s; last seen: {seen}") from None
        finally:
            self._waiters.remove(waiter)


def _matches(event: Any, name: str, where: Callable[[Any], bool] | None) -> bool:
    return str(event.get("Event", "")).lower() == name.lower() and (where is None or where(event))


async def originate(
    ami: Any,
    script: str,
    to: str,
    *,
    from_number: str,
    caller_name: str,
    variables: dict[str, str],
) -> str:
    """Call the adapter: test caller ``script`` dials ``to`` in context ``twiml``.

    Returns the Uniqueid of the adapter's half (``;1``), which is also the Linkedid of both
    halves; the caller's half (``;2``) gets ``<that>-caller``. Resolves once the call is up,
    after ``OriginateResponse``; RuntimeError if Asterisk reports a failure.
    """
    uniqueid = f"twiml-test-{uuid.uuid4().hex[:16]}"
    action = {
        "Action": "Originate",
        "Channel": f"Local/{script}@{CALLERS_CONTEXT}",
        "Context": "twiml",
        "Exten": to,
        "Priority": "1",
        "CallerID": f'"{caller_name}" <{from_number}>',
        "Timeout": "30000",
        "Async": "true",
        "ChannelId": uniqueid,
        "OtherChannelId": f"{uniqueid}-caller",
        "Variable": [f"{name}={value}" for name, value in variables.items()],
    }
    reply = await asyncio.wait_for(ami.send_action(action), timeout=40.0)
    messages = reply if isinstance(reply, list) else [reply]
    if messages[-1].get("Response") != "Success":
        raise RuntimeError(f"Originate {script} -> {to} failed: {messages!r}")
    return uniqueid


async def agi_command(
    ami: Any, events: AmiEventLog, channel: str, command: str, *, within: float = 30.0
) -> str:
    """Run one AsyncAGI command on ``channel``; returns the decoded Result (``200 result=...``)."""
    command_id = f"twiml-test-{uuid.uuid4().hex[:16]}"
    action = Action(
        {"Action": "AGI", "Channel": channel, "Command": command, "CommandID": command_id}
    )
    queued = await ami.send_action(action, as_list=False)
    if queued.get("Response") != "Success":
        raise RuntimeError(f"AGI {command!r} on {channel} refused: {queued!r}")
    done = await events.wait_for(
        "AsyncAGIExec", lambda e: e.get("CommandId") == command_id, within=within
    )
    return str(done.get("Result", "")).strip()


def decode_agi_env(env: str) -> dict[str, str]:
    """The ``Env`` header of AsyncAGIStart (URL-encoded ``key: value`` lines) as a dict."""
    pairs: dict[str, str] = {}
    for line in unquote(env).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


async def wait_heard_closed(events: AmiEventLog, heard: str, *, within: float = 10.0) -> None:
    """Wait until the caller's channel has closed its HEARD recording (the WAV is final)."""
    await events.wait_for(
        "VarSet",
        lambda e: e.get("Variable") == HEARD_CLOSED_VARIABLE and e.get("Value") == heard,
        within=within,
    )
