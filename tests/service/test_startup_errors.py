"""``twiml-adapter serve`` that cannot start: one line naming the cause and the fix, exit 2,
no traceback (unless ``--debug``) and no "Unclosed client session" noise.

The real CLI runs as a subprocess configured by environment variables, against the real
Asterisk 22 (AMI cases), the real FreeSWITCH 1.10.12 (ESL cases) and the real PostgreSQL; the
rest (a refused or silent port, a port in use, a folder that is a file) needs no server. Only
FreeSWITCH's rude rejection (its ACL) cannot be provoked on the real switch's loopback ACL: a
socket answering exactly what mod_event_socket sends then stands in for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from asterisk_lab import LIMITED_AMI_USERNAME, AsteriskPbx
from freeswitch_lab import FreeSwitchStack

from adapter.startup_errors import describe

REPO = Path(__file__).resolve().parents[2]
PREFIX = "twiml-adapter: cannot start: "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_environ(tmp_path: Path) -> dict[str, str]:
    """An Asterisk configuration whose AMI port refuses (nothing listens there)."""
    return {
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "TWIML_ADAPTER_ASTERISK_HOST": "127.0.0.1",
        "TWIML_ADAPTER_ASTERISK_PORT": str(free_port()),
        "TWIML_ADAPTER_ASTERISK_USERNAME": "adapter",
        "TWIML_ADAPTER_ASTERISK_SECRET": "not-the-secret",
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": str(tmp_path / "spool"),
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://127.0.0.1:9/voice"}]',
    }


def asterisk_environ(pbx: AsteriskPbx, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **base_environ(tmp_path),
        "TWIML_ADAPTER_ASTERISK_HOST": pbx.ami_host,
        "TWIML_ADAPTER_ASTERISK_PORT": str(pbx.ami_port),
        "TWIML_ADAPTER_ASTERISK_USERNAME": pbx.ami_username,
        "TWIML_ADAPTER_ASTERISK_SECRET": pbx.ami_secret,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": pbx.spool_dir,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL": str(pbx.spool_dir_local),
        **extra,
    }


def freeswitch_environ(fs: FreeSwitchStack, tmp_path: Path, **extra: str) -> dict[str, str]:
    environ = fs.adapter_environ(tmp_path / "data", "http://127.0.0.1:9/voice")
    # Its own outbound-socket port: the session's adapters may be using the lab's.
    environ["TWIML_ADAPTER_FREESWITCH_LISTEN"] = f"127.0.0.1:{free_port()}"
    return {**environ, **extra}


def esl_environ(tmp_path: Path, port: int) -> dict[str, str]:
    return {**base_environ(tmp_path), "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
            "TWIML_ADAPTER_FREESWITCH_ESL_PORT": str(port),
            "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": "ClueCon",
            "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR": str(tmp_path / "spool")}


def serve(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TWIML_ADAPTER_")}
    return subprocess.run(
        [sys.executable, "-m", "adapter.cli", "serve", *args],
        env={**inherited, **environ}, cwd=REPO, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=90,
    )


def fails_with(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2; stderr's last line names every needle and is the only complaint (what comes
    before it, if anything, is INFO logging of the start-up); no traceback, no noise."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert proc.stdout == ""
    *before, line = proc.stderr.splitlines()
    assert all(" INFO " in earlier for earlier in before), output
    assert line.startswith(PREFIX), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def fails_with_traceback(proc: subprocess.CompletedProcess[str], line: str) -> None:
    """``--debug``: the same last line, after the traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert "Unclosed" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == line


def starts_and_stops(environ: dict[str, str]) -> None:
    """A correct configuration passes the same checks: ready, then SIGINT ends it (status 0)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TWIML_ADAPTER_")}
    with subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "serve"], env={**inherited, **environ},
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        seen: list[str] = []
        try:
            for line in process.stdout:  # ends when the process does
                seen.append(line)
                if "twiml-pbx-adapter ready" in line:
                    break
            assert "twiml-pbx-adapter ready" in "".join(seen), "".join(seen)
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        output = "".join(seen) + rest
        assert process.returncode == 0, output
        assert "cannot start" not in output
        assert "Traceback" not in output
        assert "Unclosed" not in output


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- Asterisk -----------------------------------------------------------------------------------


def test_ami_port_refused(tmp_path: Path) -> None:
    environ = base_environ(tmp_path)
    port = environ["TWIML_ADAPTER_ASTERISK_PORT"]
    line = fails_with(serve(environ), f"AMI at 127.0.0.1:{port}", "connection refused",
                      "TWIML_ADAPTER_ASTERISK_HOST", "TWIML_ADAPTER_ASTERISK_PORT",
                      "manager.conf")
    fails_with_traceback(serve(environ, "--debug"), line)


def test_ami_port_silent(tmp_path: Path, taken_port: int) -> None:
    """Something listens but never answers the login (not Asterisk, or a stuck one)."""
    environ = {**base_environ(tmp_path), "TWIML_ADAPTER_ASTERISK_PORT": str(taken_port)}
    fails_with(serve(environ), f"AMI at 127.0.0.1:{taken_port}", "no answer in time",
               "[asterisk] host and port")


@pytest.mark.asterisk
def test_ami_user_with_the_documented_privileges_starts(asterisk_lab: AsteriskPbx,
                                                        tmp_path: Path) -> None:
    starts_and_stops(asterisk_environ(asterisk_lab, tmp_path))


@pytest.mark.asterisk
@pytest.mark.parametrize("user", ["adapter", "nobody-such"])
def test_ami_login_refused(asterisk_lab: AsteriskPbx, tmp_path: Path, user: str) -> None:
    environ = asterisk_environ(asterisk_lab, tmp_path, TWIML_ADAPTER_ASTERISK_SECRET="wrong",
                               TWIML_ADAPTER_ASTERISK_USERNAME=user)
    line = fails_with(serve(environ), f"refused the AMI login of user {user!r}",
                      "(Authentication failed)", "asterisk.secret", f"[{user}] section",
                      "manager.conf", "manager reload")
    fails_with_traceback(serve(environ, "--debug"), line)


@pytest.mark.asterisk
def test_ami_user_lacks_write_privileges(asterisk_lab: AsteriskPbx, tmp_path: Path) -> None:
    environ = asterisk_environ(asterisk_lab, tmp_path,
                               TWIML_ADAPTER_ASTERISK_USERNAME=LIMITED_AMI_USERNAME)
    fails_with(serve(environ), f"AMI user {LIMITED_AMI_USERNAME!r}",
               "lacks the write privilege call, originate (", "Permission denied",
               "read = system,call,agi,dtmf and write = system,call,agi,originate",
               f"[{LIMITED_AMI_USERNAME}] section")


# --- FreeSWITCH ---------------------------------------------------------------------------------


@pytest.mark.freeswitch
def test_freeswitch_with_the_right_password_starts(freeswitch_real: FreeSwitchStack,
                                                   tmp_path: Path) -> None:
    starts_and_stops(freeswitch_environ(freeswitch_real, tmp_path))


@pytest.mark.freeswitch
def test_esl_password_refused(freeswitch_real: FreeSwitchStack, tmp_path: Path) -> None:
    environ = freeswitch_environ(freeswitch_real, tmp_path,
                                 TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD="wrong")
    line = fails_with(serve(environ),
                      f"event socket at {freeswitch_real.esl_host}:{freeswitch_real.esl_port}",
                      "refused the password (-ERR invalid)", "freeswitch.esl_password",
                      "event_socket.conf.xml")
    fails_with_traceback(serve(environ, "--debug"), line)


@pytest.mark.freeswitch
def test_outbound_socket_port_in_use(freeswitch_real: FreeSwitchStack, tmp_path: Path,
                                     taken_port: int) -> None:
    environ = freeswitch_environ(freeswitch_real, tmp_path,
                                 TWIML_ADAPTER_FREESWITCH_LISTEN=f"127.0.0.1:{taken_port}")
    fails_with(serve(environ), f"cannot listen on 127.0.0.1:{taken_port}",
               "FreeSWITCH's outbound socket", "address already in use", "freeswitch.listen",
               "socket HOST:PORT")


def test_esl_port_refused(tmp_path: Path) -> None:
    port = free_port()
    fails_with(serve(esl_environ(tmp_path, port)), f"FreeSWITCH's event socket at 127.0.0.1:{port}",
               "connection refused", "freeswitch.esl_port", "mod_event_socket")


def test_esl_port_silent(tmp_path: Path, taken_port: int) -> None:
    """Something listens but never greets (greenswitch alone would wait for ever)."""
    fails_with(serve(esl_environ(tmp_path, taken_port)),
               f"FreeSWITCH's event socket at 127.0.0.1:{taken_port}", "(no answer within 10 s)",
               "freeswitch.esl_host")


def esl_frame(headers: str, body: str = "") -> bytes:
    length = f"Content-Length: {len(body.encode())}\n" if body else ""
    return f"{headers}\n{length}\n{body}".encode()


@contextlib.contextmanager
def scripted_event_socket(replies: list[bytes]) -> Iterator[int]:
    """One connection: sends `replies[0]`, then each next one after a command has come in
    (a blank line), then closes. Stands in for what the real switch cannot be made to do."""
    server = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        connection, _address = server.accept()
        with connection:
            connection.sendall(replies[0])
            for reply in replies[1:]:
                received = b""
                while b"\n\n" not in received:
                    chunk = connection.recv(1024)
                    if not chunk:
                        return
                    received += chunk
                connection.sendall(reply)
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(1024):
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()
        thread.join(10)


def test_esl_rude_rejection(tmp_path: Path) -> None:
    """What mod_event_socket sends a host its ACL refuses, then it closes."""
    rejection = esl_frame("Content-Type: text/rude-rejection", "Access Denied, go away.\n")
    with scripted_event_socket([rejection]) as port:
        fails_with(serve(esl_environ(tmp_path, port)),
                   f"event socket at 127.0.0.1:{port} rejected this host", "rude rejection",
                   "apply-inbound-acl", "acl.conf.xml")


def test_freeswitch_not_ready(tmp_path: Path) -> None:
    """The password is accepted but ``api status`` does not say "is ready"."""
    status = "UP 0 years, 0 days, 0 hours, 0 minutes, 1 second\nFreeSWITCH is not ready\n"
    replies = [esl_frame("Content-Type: auth/request"),
               esl_frame("Content-Type: command/reply\nReply-Text: +OK accepted"),
               esl_frame("Content-Type: api/response", status)]
    with scripted_event_socket(replies) as port:
        fails_with(serve(esl_environ(tmp_path, port)),
                   f"FreeSWITCH at 127.0.0.1:{port} is not ready", "FreeSWITCH is not ready",
                   "fs_cli -x status")


# --- database, ports, folders -------------------------------------------------------------------


def test_database_refused(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql+asyncpg://twiml:s3cret-pw@127.0.0.1:{port}/twiml"
    proc = serve({**base_environ(tmp_path), "TWIML_ADAPTER_STORAGE_DATABASE_URL": url})
    fails_with(proc, f"database postgresql+asyncpg://twiml:***@127.0.0.1:{port}/twiml",
               "connection refused", "storage.database_url")
    assert "s3cret-pw" not in proc.stderr


async def test_database_missing(postgres_url: str, tmp_path: Path) -> None:
    """The real PostgreSQL answers, but the URL names a database it does not have."""
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    proc = serve({**base_environ(tmp_path), "TWIML_ADAPTER_STORAGE_DATABASE_URL": url})
    fails_with(proc, "/no_such_database (", "does not exist", "storage.database_url")


def test_http_port_in_use(tmp_path: Path, taken_port: int) -> None:
    environ = {**base_environ(tmp_path), "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{taken_port}"}
    fails_with(serve(environ), f"cannot listen on 127.0.0.1:{taken_port} for the HTTP API",
               "address already in use", "http.listen", "TWIML_ADAPTER_HTTP_LISTEN")


def test_spool_folder_not_writable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    spool = tmp_path / "a-file" / "spool"
    environ = {**base_environ(tmp_path), "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": str(spool)}
    fails_with(serve(environ), f"cannot write to the folder {spool}/recordings",
               "not a directory", "asterisk.spool_dir_local",
               "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL")


def test_data_folder_not_writable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    data = tmp_path / "a-file" / "data"
    environ = {**base_environ(tmp_path), "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data)}
    fails_with(serve(environ), f"cannot write to the folder {data}", "storage.data_dir")


def test_unexpected_error_is_one_line_too() -> None:
    line = describe(RuntimeError("something else\nwith a second line"))
    assert line == ("unexpected RuntimeError: something else (run 'twiml-adapter serve "
                    "--debug' for the traceback)")
