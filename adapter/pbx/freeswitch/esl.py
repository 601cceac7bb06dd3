"""greenswitch connections with the adapter's framing (gevent thread only).

greenswitch 0.0.19 gives the connection handling this driver keeps: `InboundESL.connect` /
``authenticate``, `OutboundSession.connect` (the ``connect`` command and its channel data) and
the command/reply bookkeeping (a FIFO of ``AsyncResult``). Its reader is replaced, here, in
subclasses, because of what it does with the bytes:

- ``ESLEvent.parse_data`` URL-decodes the WHOLE payload and splits lines afterwards, so an
  encoded newline in a caller ID forges headers (``Bob%0AUnique-ID%3A%20spoofed`` overwrites
  ``Unique-ID``). The outbound ``connect`` reply carries all channel data in its header block, so
  this hits the call's identity too. Every frame here goes through `protocol.EslParser`, which
  splits first and decodes each value after; `ParsedEvent.parse_data` refuses to run.
- its ``receive_events`` never yields while the socket has data, so during a burst no other
  greenlet runs (perf-limits note 3); ours yields after each read.
- ``send`` uses ``socket.send`` (may write part of a command), has no lock (two greenlets can
  interleave their bytes and mismatch the reply FIFO), leaves its waiter in the FIFO when the
  write fails, and waits forever; ours locks, ``sendall``s, cleans up and times out.
- a lost connection leaves pending commands waiting forever; ours fails them.
- its outbound dispatch only calls ``'*'`` handlers for events without a specific handler and
  fails pending commands on a *linger* notice; here events go, in arrival order, to `on_event`
  (as parsed), then to the specific handlers and then to ``'*'``, from the reading greenlet (no
  second queue, no 1 s polling).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import gevent.lock  # type: ignore[import-untyped]
from greenswitch.esl import (  # type: ignore[import-untyped]
    ESLEvent,
    InboundESL,
    NotConnectedError,
    OutboundSession,
)

from adapter.pbx.base import ChannelGone, PbxError
from adapter.pbx.freeswitch.escape import esl_event_name
from adapter.pbx.freeswitch.protocol import EslEvent, EslFrame, EslParser, EslProtocolError
from adapter.startup_errors import EslPasswordRefused, EslRejected, EslUnreachable, reason

__all__ = [
    "CHANNEL_GONE_REPLIES",
    "COMMAND_TIMEOUT",
    "DISCONNECT",
    "FramedInboundESL",
    "FramedOutboundSession",
    "NotConnectedError",
    "ParsedEvent",
]

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
READ_SIZE = 65536
# mod_commands' ``api`` replies when FreeSWITCH does not know the channel named: uuid_kill,
# uuid_break... say "No such channel!", uuid_record and others "Cannot locate session!".
CHANNEL_GONE_REPLIES = ("-ERR No such channel", "-ERR Cannot locate session")
# Handler name for ``text/disconnect-notice`` frames (greenswitch's name for them).
DISCONNECT = "DISCONNECT"


class ParsedEvent(ESLEvent):  # type: ignore[misc]
    """greenswitch's event type, filled from our parser (never from ``parse_data``)."""

    def __init__(self, event: EslEvent, data: str = "") -> None:
        self.event = event
        self.headers: Mapping[str, str] = event.headers  # the same one (no decoded copy)
        self.data = data

    def parse_data(self, data: str) -> None:
        raise RuntimeError("greenswitch's whole-payload URL decoding is not used (header spoofing)")


class _Framed:
    """The reader, dispatch and writer that replace greenswitch's (a mixin for its classes)."""

    sock: Any
    connected: bool
    event_handlers: dict[str, list[Callable[[Any], None]]]
    _commands_sent: list[Any]
    _auth_request_event: Any
    _lingering: bool
    _run: bool

    command_timeout: float = COMMAND_TIMEOUT
    on_closed: Callable[[], None] | None = None
    # Every event and disconnect notice as parsed, before any registered handler (the
    # outbound socket's one consumer: no greenswitch event type in between).
    on_event: Callable[[EslEvent], None] | None = None
    rejected = False  # FreeSWITCH sent text/rude-rejection (its ACL refused us)

    def _init_framing(self) -> None:
        self._send_lock = gevent.lock.Semaphore()
        self._closed = gevent.event.Event()
        self._parser = EslParser()

    # greenswitch calls this from connect() / __init__: start only our reader.
    def start_event_handlers(self) -> None:
        self._receive_events_greenlet = gevent.spawn(self.receive_events)
        self._process_events_greenlet = None

    def receive_events(self) -> None:
        try:
            while self._run:
                try:
                    data = self.sock.recv(READ_SIZE)
                except OSError:
                    break
                if not data:
                    break
                for frame in self._parser.feed(data):
                    self.handle_frame(frame)
                gevent.sleep(0)  # let command greenlets run between reads, even in a burst
        except EslProtocolError:
            log.exception("ESL protocol error; closing the connection")
        finally:
            self._connection_lost()

    def handle_event(self, event: Any) -> None:
        raise RuntimeError("greenswitch's frame handling is replaced by handle_frame")

    def handle_frame(self, frame: EslFrame) -> None:
        kind = frame.content_type
        if kind == "auth/request":
            self._auth_request_event.set()
        elif kind in ("command/reply", "api/response"):
            if not self._commands_sent:
                log.warning("ESL %s without a pending command; ignored", kind)
                return
            waiter = self._commands_sent.pop(0)
            data = frame.reply_text if kind == "command/reply" else frame.text()
            waiter.set(ParsedEvent(EslEvent(frame.headers), data))
        elif kind == "text/event-plain":
            event = frame.event()
            self._deliver(event.name, event, event.body)
        elif kind == "text/disconnect-notice":
            if frame.headers.get("Content-Disposition") == "linger":
                self._lingering = True  # events keep coming until FreeSWITCH closes
            else:
                self.connected = False
            self._deliver(DISCONNECT, EslEvent(frame.headers), frame.text())
        elif kind == "text/rude-rejection":
            self.connected = False
            self.rejected = True
            self._auth_request_event.set()  # connect() then raises NotConnectedError
        else:
            log.debug("ESL frame %r ignored", kind)

    def _deliver(self, name: str, event: EslEvent, data: str) -> None:
        if self.on_event is not None:
            self._handle(self.on_event, event, name)
        handlers = list(self.event_handlers.get(name, ())) + list(self.event_handlers.get("*", ()))
        if handlers:
            parsed = ParsedEvent(event, data)
            for handler in handlers:
                self._handle(handler, parsed, name)

    @staticmethod
    def _handle(handler: Callable[[Any], None], event: Any, name: str) -> None:
        try:
            handler(event)
        except Exception:
            log.exception("ESL handler %r failed for %s", handler, name)

    def _connection_lost(self) -> None:
        self.connected = False
        self._run = False
        pending, self._commands_sent[:] = list(self._commands_sent), []
        for waiter in pending:
            waiter.set_exception(NotConnectedError("ESL connection closed"))
        self._auth_request_event.set()
        self._closed.set()
        if self.on_closed is not None:
            try:
                self.on_closed()
            except Exception:
                log.exception("ESL on_closed callback failed")

    def send(self, data: str) -> ParsedEvent:
        """Send one command (the blank line is added) and wait for its reply."""
        (reply,) = self.send_many((data,))
        return reply

    def send_many(self, commands: Sequence[str]) -> list[ParsedEvent]:
        """Send `commands` in one write, without waiting in between, then wait for their
        replies, in order (FreeSWITCH reads and answers a connection's commands one after
        another). One round trip instead of one per command: under a burst of calls a round
        trip also waits for the gevent hub's turn."""
        for data in commands:
            if "\n\n" in data or "\r" in data or not data:
                raise PbxError("an ESL command must be one non-empty block without CR or "
                               "blank lines")
        if not self.connected:
            raise NotConnectedError("ESL connection is closed")
        waiters = [gevent.event.AsyncResult() for _ in commands]
        with self._send_lock:
            self._commands_sent.extend(waiters)
            try:
                self.sock.sendall("".join(f"{data}\n\n" for data in commands).encode())
            except OSError as exc:
                for waiter in waiters:
                    if waiter in self._commands_sent:
                        self._commands_sent.remove(waiter)
                raise NotConnectedError(f"ESL write failed: {exc}") from exc
        replies: list[ParsedEvent] = []
        for data, waiter in zip(commands, waiters, strict=True):
            try:
                replies.append(waiter.get(timeout=self.command_timeout))
            except gevent.Timeout as exc:
                # The waiter stays in the FIFO: the late reply still lines up with it.
                command = data.split("\n", 1)[0].split(" ", 1)[0]
                raise PbxError(f"no ESL reply to {command!r} within {self.command_timeout} s"
                               ) from exc
        return replies

    def api(self, command: str) -> str:
        """``api <command>`` (on the inbound connection, or on a call's ``async full`` socket);
        returns the raw response text. `ChannelGone` when it says FreeSWITCH does not know the
        channel the command names (`CHANNEL_GONE_REPLIES`)."""
        reply = str(self.send(f"api {command}").data)
        if reply.startswith(CHANNEL_GONE_REPLIES):
            raise ChannelGone(f"{command.split(' ', 1)[0]}: {reply.strip()[:200]}")
        return reply

    def wait_closed(self, timeout: float | None = None) -> bool:
        return bool(self._closed.wait(timeout))

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``exit`` if still connected, then close; never waits more than about `timeout`."""
        if self.connected:
            try:
                with gevent.Timeout(timeout, False):
                    self.send("exit")
            except (NotConnectedError, PbxError, OSError):
                pass
        self._run = False
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        greenlet = getattr(self, "_receive_events_greenlet", None)
        if greenlet is not None:
            greenlet.join(timeout)
            if not greenlet.dead:
                greenlet.kill(block=False)
        if sock is not None:
            sock.close()
        sock_file = getattr(self, "sock_file", None)
        if sock_file is not None:
            sock_file.close()


class FramedInboundESL(_Framed, InboundESL):  # type: ignore[misc]
    """An inbound ESL connection (``auth``, then ``api`` commands), spoof-safe."""

    def __init__(self, host: str, port: int, password: str, timeout: float = 5.0) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self._init_framing()

    def connect(self) -> None:
        """greenswitch's connect and auth, bounded by `timeout` as a whole (greenswitch waits
        for the greeting without a bound); the `adapter.startup_errors` class of a failure."""
        silent = NotConnectedError(f"no answer within {self.timeout:g} s")
        try:
            with gevent.Timeout(self.timeout, silent):
                super().connect()
        except ValueError as exc:  # greenswitch: 'Invalid password.' (-ERR invalid)
            self.stop()
            raise EslPasswordRefused(self.host, self.port) from exc
        except NotConnectedError as exc:
            self.stop()
            if self.rejected:
                raise EslRejected(self.host, self.port) from exc
            cause = str(exc) or "closed before authentication"
            raise EslUnreachable(self.host, self.port, cause[:1].lower() + cause[1:]) from exc
        except OSError as exc:
            self.stop()
            raise EslUnreachable(self.host, self.port, reason(exc)) from exc

    def bgapi(self, command: str, job_uuid: str) -> str:
        """``bgapi <command>`` with a ``Job-UUID`` header: mod_event_socket uses that id for the
        job and replies at once (``+OK Job-UUID: <id>``); the command's output comes later as
        the body of a BACKGROUND_JOB event with that ``Job-UUID``. Returns the reply text."""
        reply = self.send(f"bgapi {command}\nJob-UUID: {job_uuid}")
        return str(reply.data)

    def command(self, text: str) -> str:
        """One command whose reply must say ``+OK`` (``filter …``, ``nixevent …``); the reply."""
        reply = str(self.send(text).data)
        if not reply.startswith("+OK"):
            word = text.split(" ", 1)[0]
            raise PbxError(f"FreeSWITCH refused {word!r}: {reply.strip()[:200]!r}")
        return reply

    def subscribe(self, events: tuple[str, ...], handler: Callable[[ParsedEvent], None]) -> None:
        """``event plain <events>``, each event then handed to `handler` (reading greenlet)."""
        names = [esl_event_name(name) for name in events]
        for name in names:
            self.register_handle(name, handler)  # once per name and handler
        self.command(f"event plain {' '.join(names)}")


class FramedOutboundSession(_Framed, OutboundSession):  # type: ignore[misc]
    """One call's outbound socket (FreeSWITCH connected to us), spoof-safe."""

    sock_file: Any
    session_data: Mapping[str, str] | None

    def __init__(self, client_address: tuple[str, int], sock: Any) -> None:
        self._init_framing()
        super().__init__(client_address, sock)
        # greenswitch's own outbound handlers (blocking helpers, expected events, failing
        # commands on a linger notice) are not used by the adapter, nor are its buffered file
        # on the socket and its event queue (our reader has its own): they would stay for the
        # whole call (issue #13 row 4).
        self.event_handlers.clear()
        self.sock_file.close()
        self.sock_file = None
        self._esl_event_queue = None

    def keep_channel_data(self, names: Iterable[str]) -> EslEvent:
        """The ``connect`` reply's headers `names` (decoded line by line), the only ones the
        session keeps from then on: the reply carries some 190, held for the whole call."""
        data: Mapping[str, str] = self.session_data or {}
        kept = {name: data[name] for name in names if name in data}
        self.session_data = kept
        return EslEvent(kept)
