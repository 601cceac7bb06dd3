"""Why ``twiml-adapter serve`` could not start, in one line naming the cause and the fix.

Every start-up failure an administrator can cause (a wrong address, secret, password or URL, a
port in use, a folder that cannot be written) is raised as one of the `StartupProblem` classes
below by the step that found it; their wording lives here and nowhere else. `describe` turns any
exception into that one line (an unexpected one included); the CLI prints it, with exit status
2, and the traceback only with ``--debug``. docs/configuration.md ("When it does not start")
lists each message and its fix.
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path
from typing import ClassVar

from adapter.config.environment import env_variable
from adapter.errors import AdapterError
from adapter.pbx.base import PbxError

__all__ = [
    "AMI_READ",
    "AMI_WRITE",
    "AmiLoginRefused",
    "AmiPrivilegesMissing",
    "AmiUnreachable",
    "DatabaseUnreachable",
    "EslNotReady",
    "EslPasswordRefused",
    "EslRejected",
    "EslUnreachable",
    "FolderNotWritable",
    "ListenFailed",
    "PbxStartupProblem",
    "PbxUnreachable",
    "StartFailed",
    "StartupProblem",
    "check_writable",
    "describe",
    "reason",
]

# What the adapter's AMI user needs in manager.conf (docs/asterisk.md).
AMI_READ = "system,call,agi,dtmf"
AMI_WRITE = "system,call,agi,originate"


def reason(exc: BaseException) -> str:
    """A short, lower-case cause: ``connection refused``, ``timed out``, ``[Errno 13] …``."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "address already in use"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class StartupProblem(AdapterError):
    """A start-up step failed for a reason the administrator can fix; ``str()`` says how."""


class StartFailed(Exception):
    """`Adapter.run_forever`: start-up failed (and what had started was stopped again)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.cause = cause


class PbxStartupProblem(StartupProblem, PbxError):
    """A start-up problem with the PBX at `host`:`port`. Each subclass states its `wording`:
    a template of what went wrong and how to fix it, filled with host, port and the details
    its constructor takes."""

    wording: ClassVar[str]

    def __init__(self, host: str, port: int, **details: str) -> None:
        super().__init__(self.wording.format(host=host, port=port, **details))
        self.host, self.port = host, port


class PbxUnreachable(PbxStartupProblem):
    """The PBX's management socket does not answer at `host`:`port`; `cause` says why."""

    def __init__(self, host: str, port: int, cause: str) -> None:
        super().__init__(host, port, cause=cause)


# --- Asterisk -----------------------------------------------------------------------------------


class AmiUnreachable(PbxUnreachable):
    """Asterisk's AMI does not answer."""

    wording = (
        "cannot reach Asterisk's AMI at {host}:{port} ({cause}): check [asterisk] host "
        "and port (TWIML_ADAPTER_ASTERISK_HOST, TWIML_ADAPTER_ASTERISK_PORT) and that "
        "Asterisk runs with manager.conf [general] enabled = yes on that bindaddr and port")


class AmiLoginRefused(PbxStartupProblem):
    """Asterisk refused the AMI user or its secret."""

    wording = (
        "Asterisk at {host}:{port} refused the AMI login of user {username!r} ({answer}): "
        "make asterisk.username and asterisk.secret match the [{username}] section of "
        "manager.conf (its secret, and permit/deny must allow this host), then run "
        "'manager reload'")

    def __init__(self, host: str, port: int, username: str, answer: str) -> None:
        super().__init__(host, port, username=username, answer=answer)
        self.username = username


class AmiPrivilegesMissing(PbxStartupProblem):
    """The AMI user lacks write privileges the adapter needs."""

    wording = (
        "AMI user {username!r} at {host}:{port} lacks the write privilege "
        "{missing} (Asterisk answers 'Permission denied'): set "
        f"read = {AMI_READ} and write = {AMI_WRITE} in its [{{username}}] section of "
        "manager.conf, then run 'manager reload'")

    def __init__(self, host: str, port: int, username: str, missing: tuple[str, ...]) -> None:
        super().__init__(host, port, username=username, missing=", ".join(missing))
        self.username = username
        self.missing = missing


# --- FreeSWITCH ---------------------------------------------------------------------------------


class EslUnreachable(PbxUnreachable):
    """FreeSWITCH's event socket does not answer."""

    wording = (
        "cannot reach FreeSWITCH's event socket at {host}:{port} ({cause}): check "
        "freeswitch.esl_host and freeswitch.esl_port (TWIML_ADAPTER_FREESWITCH_ESL_HOST, "
        "_ESL_PORT) against listen-ip and listen-port in event_socket.conf.xml, and that "
        "FreeSWITCH runs with mod_event_socket loaded")


class EslPasswordRefused(PbxStartupProblem):
    """FreeSWITCH refused the ESL password."""

    wording = (
        "FreeSWITCH's event socket at {host}:{port} refused the password (-ERR invalid): "
        "set freeswitch.esl_password (TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD) to the "
        "password in event_socket.conf.xml")


class EslRejected(PbxStartupProblem):
    """FreeSWITCH's ACL refused this host."""

    wording = (
        "FreeSWITCH's event socket at {host}:{port} rejected this host (rude rejection: "
        "its access list): allow the adapter's address in the apply-inbound-acl of "
        "event_socket.conf.xml (or in the list it names in acl.conf.xml), then run "
        "'reloadacl' and 'reload mod_event_socket'")


class EslNotReady(PbxStartupProblem):
    """FreeSWITCH answers but is not ready for calls."""

    wording = (
        "FreeSWITCH at {host}:{port} is not ready ({status!r}): start the adapter once "
        "'fs_cli -x status' says 'is ready' (FreeSWITCH still starting, or shutting down)")

    def __init__(self, host: str, port: int, status: str) -> None:
        super().__init__(host, port, status=status)


# --- the adapter's own resources ----------------------------------------------------------------

_LISTENERS = {
    "http.listen": ("the HTTP API", "TWIML_ADAPTER_HTTP_LISTEN", ""),
    "freeswitch.listen": ("FreeSWITCH's outbound socket", "TWIML_ADAPTER_FREESWITCH_LISTEN",
                          " (and the dialplan's 'socket HOST:PORT' to match)"),
}


class ListenFailed(StartupProblem, PbxError):
    """`key` is ``http.listen`` or ``freeswitch.listen``."""

    def __init__(self, key: str, host: str, port: int, exc: BaseException) -> None:
        what, variable, also = _LISTENERS[key]
        in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
        fix = (f"another process already listens there (see 'ss -ltnp sport = :{port}'): "
               f"stop it or choose another {key} ({variable}){also}" if in_use else
               f"choose an address of this host and a free port for {key} ({variable}){also}")
        super().__init__(f"cannot listen on {host}:{port} for {what} ({reason(exc)}): {fix}")
        self.key = key


class DatabaseUnreachable(StartupProblem):
    def __init__(self, url: str, exc: BaseException) -> None:
        super().__init__(
            f"cannot open the database {_hide_password(url)} ({reason(exc)}): check "
            "storage.database_url (TWIML_ADAPTER_STORAGE_DATABASE_URL): host, port, database, "
            "user and password, and that the server runs and accepts connections from here")
        self.url = _hide_password(url)


class FolderNotWritable(StartupProblem):
    """`key`: the setting naming the folder (``storage.data_dir``, ``<pbx>.spool_dir_local``)."""

    def __init__(self, key: str, path: Path, exc: BaseException) -> None:
        variable = env_variable(key)
        super().__init__(
            f"cannot write to the folder {path} ({reason(exc)}): create it and let the "
            f"adapter's user write there, or set {key} ({variable}) to a folder it can write")
        self.key = key
        self.path = path


def check_writable(path: Path, key: str) -> None:
    """Make `path` (and its parents) and write a file there; `FolderNotWritable` if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".twiml-write-check-"):
            pass
    except OSError as exc:
        raise FolderNotWritable(key, path, exc) from exc


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(the configured URL)"


def describe(exc: BaseException) -> str:
    """The one line for `exc`: a `StartupProblem`'s own text, or for anything unexpected its
    type and message and where to get more."""
    if isinstance(exc, StartFailed):
        exc = exc.cause
    if isinstance(exc, StartupProblem):
        return str(exc)
    return (f"unexpected {type(exc).__name__}: {reason(exc)} (run 'twiml-adapter serve "
            "--debug' for the traceback)")
