"""A real FreeSWITCH 1.10.12 for the tests: the build of ``docker/provision-freeswitch.sh``
(cached in ``~/.cache/twiml-pbx-adapter/freeswitch``), started once per test session on this
host with the configuration we ship (``docker/freeswitch/conf``), the test context ``lab`` and
the project's dialplan (``dialplan/freeswitch/twiml.xml``).

Each session gets its own folders (conf, log, db, run, spool), a free event socket port with a
random password, a free port for the dialplan's ``socket`` (where the adapter under test
listens), and a free port for the SIP profile ``trunk`` (sofia.conf.xml: calls into
``twiml``). FreeSWITCH runs on this host, so the adapter and FreeSWITCH see the spool under the
same path.

`LocalFreeSwitch.start()` returns the `FreeSwitchStack` that the test side
(`freeswitch_lab.RealFreeSwitch`) and the adapter's configuration use, exactly as for the
compose FreeSWITCH.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self

from fault_lab import free_port
from freeswitch_lab import REPO_ROOT, TWIML_DIALPLAN, EslConnection, EslError, FreeSwitchStack

__all__ = ["LocalFreeSwitch", "provisioned_root"]

PROVISION_SCRIPT = REPO_ROOT / "docker" / "provision-freeswitch.sh"
SHIPPED_CONF = REPO_ROOT / "docker" / "freeswitch" / "conf"
START_TIMEOUT = 60.0  # the first start on a new database took 11 s here
STOP_TIMEOUT = 20.0


def provisioned_root() -> Path:
    """The FreeSWITCH build for this checkout's sources: built now if it is missing (the script
    is idempotent and reuses the cache)."""
    done = subprocess.run([str(PROVISION_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{PROVISION_SCRIPT} failed:\n{done.stdout}\n{done.stderr}")
    where = subprocess.run([str(PROVISION_SCRIPT), "--print-root"], capture_output=True,
                           text=True, check=True)
    return Path(where.stdout.strip())


class LocalFreeSwitch:
    """One FreeSWITCH process for a test session (``with LocalFreeSwitch(root, base) as stack``)."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = root
        self.base = base
        self.conf = base / "conf"
        self.spool = base / "spool"
        self.log_file = base / "log" / "freeswitch.log"
        self.password = secrets.token_hex(12)
        self.esl_port = free_port()
        self.socket_port = free_port()
        self.sip_port = free_port()  # UDP and TCP: a free TCP port is nearly always free in UDP
        self._process: subprocess.Popen[bytes] | None = None

    # --- configuration ------------------------------------------------------------------------

    def write_configuration(self) -> None:
        """Our shipped configuration, with this session's folders; the project's dialplan with
        this session's socket address (the file is otherwise used as shipped)."""
        shutil.rmtree(self.conf, ignore_errors=True)
        shutil.copytree(SHIPPED_CONF, self.conf)
        dialplans = self.conf / "dialplan"
        twiml = TWIML_DIALPLAN.read_text(encoding="utf-8")
        twiml, count = re.subn(r'data="twiml_adapter_socket=[^"]*"',
                               f'data="twiml_adapter_socket=127.0.0.1:{self.socket_port}"', twiml)
        if count != 1:
            raise RuntimeError(f"{TWIML_DIALPLAN}: no single twiml_adapter_socket to set")
        (dialplans / "twiml.xml").write_text(twiml, encoding="utf-8")
        top = self.conf / "freeswitch.xml"
        # The compose image mounts the project's dialplan at /etc/twiml-pbx-adapter/dialplan;
        # here it sits in dialplan/ beside lab.xml, which the next include already reads.
        text = top.read_text(encoding="utf-8")
        text = re.sub(r'[^\n]*data="/etc/twiml-pbx-adapter/dialplan/\*\.xml"/>\n', "", text)
        top.write_text(text, encoding="utf-8")
        for name in ("log", "db", "run", "temp", "storage", "cache", "recordings", "sounds"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)

    # --- process ------------------------------------------------------------------------------

    def start(self) -> FreeSwitchStack:
        self.write_configuration()
        b = self.base
        command = [
            str(self.root / "bin" / "freeswitch"), "-nf", "-nc", "-nonat",
            "-conf", str(self.conf), "-log", str(b / "log"), "-db", str(b / "db"),
            "-run", str(b / "run"), "-temp", str(b / "temp"), "-storage", str(b / "storage"),
            "-cache", str(b / "cache"), "-recordings", str(b / "recordings"),
            "-sounds", str(b / "sounds"),
        ]
        environ = {
            **os.environ,
            "FREESWITCH_ESL_PASSWORD": self.password,
            "FREESWITCH_ESL_LISTEN_IP": "127.0.0.1",
            "FREESWITCH_ESL_PORT": str(self.esl_port),
            "FREESWITCH_ESL_ACL": "loopback.auto",
            "FREESWITCH_SIP_LISTEN_IP": "127.0.0.1",
            "FREESWITCH_SIP_PORT": str(self.sip_port),
            "FREESWITCH_SIP_ACL": "loopback.auto",
        }
        output = (b / "log" / "stdout.log").open("wb")
        self._process = subprocess.Popen(command, env=environ, stdout=output,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        output.close()
        stack = FreeSwitchStack(
            esl_host="127.0.0.1", esl_port=self.esl_port, esl_password=self.password,
            spool_local=self.spool, socket_address=("127.0.0.1", self.socket_port),
            spool_pbx=PurePosixPath(self.spool), sip_address=("127.0.0.1", self.sip_port),
        )
        self._wait_ready(stack)
        return stack

    def _wait_ready(self, stack: FreeSwitchStack) -> None:
        """Until ``api status`` says "is ready" (a new process offers no event to wait for; its
        event socket is polled), or the process dies."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"FreeSWITCH exited with {self._process.returncode} at start:"
                                   f"\n{self.tail()}")
            if stack.is_ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"FreeSWITCH not ready within {START_TIMEOUT:g} s:\n"
                                   f"{self.tail()}")
            time.sleep(0.2)

    def tail(self, lines: int = 40) -> str:
        text = ""
        for path in (self.base / "log" / "stdout.log", self.log_file):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return

        async def shutdown(stack_port: int) -> None:
            connection = await EslConnection.open("127.0.0.1", stack_port, self.password,
                                                  on_event=lambda _e: None)
            try:
                await connection.api("fsctl shutdown")
            finally:
                await connection.close()

        try:
            asyncio.run(shutdown(self.esl_port))
        except (OSError, EslError, TimeoutError):
            process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> FreeSwitchStack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalFreeSwitch({self.root}, esl 127.0.0.1:{self.esl_port})"

    @classmethod
    def for_session(cls, base: Path) -> Self:
        return cls(provisioned_root(), base)
