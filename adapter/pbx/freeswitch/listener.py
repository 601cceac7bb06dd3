"""The outbound event socket server: FreeSWITCH connects here for each call (gevent thread only).

The dialplan's ``socket HOST:PORT async full`` makes FreeSWITCH open one TCP connection per
call. For each one this module:

1. sends ``connect`` and reads the channel data (decoded line by line: `esl`);
2. checks the channel's ``Unique-ID`` and tells the asyncio side a call is opening
   (`CallSink.call_opened`, where the call's owner sets `CallLink.on_event`), so no event of
   the call can arrive before its owner exists;
3. subscribes (`mapping.SESSION_SETUP`, in one write: ``myevents plain``, ``linger``,
   ``event plain RECORD_START RECORD_STOP``) and posts every event, in order and as parsed,
   to `CallLink.on_event` (`GeventBridge.post_from_reader`: while the loop is behind, the
   call's socket is not read);
4. tells the asyncio side the call is ready (`CallSink.call_ready`), then waits until
   FreeSWITCH closes the socket (after the lingering events) and reports `CallSink.call_closed`.

greenswitch's own ``OutboundESLServer`` is not used: it polls ``accept`` every 100 ms, calls
``sys.exit()`` when it cannot bind, and gives its application no way to hear the call's events.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol

import gevent  # type: ignore[import-untyped]
from gevent.server import StreamServer  # type: ignore[import-untyped]

from adapter.pbx.base import CallGone, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.bridge import GeventBridge
from adapter.pbx.freeswitch.escape import esl_uuid
from adapter.pbx.freeswitch.esl import FramedOutboundSession, NotConnectedError, ParsedEvent
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.startup_errors import ListenFailed

__all__ = ["CHANNEL_DATA_FIELDS", "CallLink", "CallSink", "OutboundListener"]

log = logging.getLogger(__name__)

# The channel data (the ``connect`` reply's headers) the adapter reads: the listener (the
# answer, the channel), `driver.incoming_from` (To, From, CallerName) and the check whether
# it is an outbound call (`originate.Originations.outbound_call_sid`, `driver.call_ready`).
# Nothing else of the ~190 headers is kept for the call.
CHANNEL_DATA_FIELDS = (
    "Reply-Text", "Unique-ID",
    "Caller-Destination-Number", "Channel-Destination-Number",
    "Caller-Caller-ID-Number", "Channel-Caller-ID-Number",
    "Caller-Caller-ID-Name", "Channel-Caller-ID-Name",
    "Caller-Context", "Channel-Context",
    f"variable_{mapping.CALL_SID_VARIABLE}", "variable_origination_caller_id_number",
)

class CallSink(Protocol):
    """The asyncio side that owns calls; its methods run in the asyncio loop (posted)."""

    def call_opened(self, link: CallLink, channel_data: EslEvent) -> None: ...

    def call_ready(self, link_id: int) -> None: ...

    def call_closed(self, link_id: int) -> None: ...


class CallLink:
    """The gevent-side handle of one call's socket. Its methods run in the gevent thread, but
    `deliver`."""

    def __init__(self, link_id: int, session: FramedOutboundSession) -> None:
        self.id = link_id
        self.session = session
        self.uuid = ""
        self.peer = session.sock.getpeername() if session.sock is not None else None
        # The call's event handler (asyncio side), set in `CallSink.call_opened`.
        self.on_event: Callable[[EslEvent], None] | None = None

    def deliver(self, event: EslEvent) -> None:
        """Asyncio loop (posted): one event of the call to its owner."""
        if self.on_event is not None:
            self.on_event(event)

    def command(self, text: str) -> str:
        """Send one command on the call's socket; returns ``Reply-Text``."""
        try:
            reply: ParsedEvent = self.session.send(text)
        except NotConnectedError as exc:
            raise CallGone(f"{self.uuid or 'call'}: the event socket is closed") from exc
        return str(reply.data)

    def api(self, command: str) -> str:
        """One ``api`` command on the call's socket (``async full`` allows it); its reply
        text, `ChannelGone` as `FramedInboundESL.api`."""
        try:
            return self.session.api(command)
        except NotConnectedError as exc:
            raise CallGone(f"{self.uuid or 'call'}: the event socket is closed") from exc

    def release(self, grace: float) -> None:
        """The adapter is done: let FreeSWITCH close the socket, or close it after `grace` s."""
        gevent.spawn(self._close_after, grace)

    def _close_after(self, grace: float) -> None:
        if not self.session.wait_closed(grace):
            log.info("call %s: FreeSWITCH kept the socket open; closing it", self.uuid)
            self.session.stop()


class OutboundListener:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        sink: CallSink,
        bridge: GeventBridge,
        setup_timeout: float,
        command_timeout: float,
    ) -> None:
        self._address = (host, port)
        self._sink = sink
        self._bridge = bridge
        self._post = bridge.post
        self._setup_timeout = setup_timeout
        self._command_timeout = command_timeout
        self._ids = itertools.count(1)
        self._links: dict[int, CallLink] = {}
        self._server: Any = None

    def start(self) -> tuple[str, int]:
        """Bind and listen; returns the bound address (useful with port 0)."""
        self._server = StreamServer(self._address, self._handle)
        try:
            self._server.start()
        except OSError as exc:
            raise ListenFailed("freeswitch.listen", *self._address, exc) from exc
        host, port = self._server.address[:2]
        return str(host), int(port)

    def stop(self, timeout: float = 2.0) -> None:
        if self._server is not None:
            self._server.close()  # no new connections
        for link in list(self._links.values()):
            link.session.stop(timeout)
        if self._server is not None:
            self._server.stop(timeout=timeout)

    def _handle(self, sock: Any, address: tuple[str, int]) -> None:
        session = FramedOutboundSession(address, sock)
        session.command_timeout = self._command_timeout
        link = CallLink(next(self._ids), session)
        self._links[link.id] = link
        try:
            if not self._set_up(link):
                return
            self._post(self._sink.call_ready, link.id)
            session.wait_closed()
        finally:
            self._links.pop(link.id, None)
            session.stop(timeout=1.0)

    def _set_up(self, link: CallLink) -> bool:
        session = link.session
        opened = False
        try:
            with gevent.Timeout(self._setup_timeout,
                                PbxError(f"call setup took over {self._setup_timeout} s")):
                session.connect()
                data = session.keep_channel_data(CHANNEL_DATA_FIELDS)
                if not data.get("Reply-Text").startswith("+OK"):
                    raise PbxError(f"connect refused: {data.get('Reply-Text')!r}")
                link.uuid = esl_uuid(data.unique_id)
                self._post(self._sink.call_opened, link, data)
                opened = True
                # From the reading greenlet's end, behind its events and within their bound.
                session.on_closed = lambda: self._bridge.post_from_reader(
                    self._sink.call_closed, link.id)
                session.on_event = lambda event: self._bridge.post_from_reader(link.deliver,
                                                                               event)
                # In one write: one round trip, not three (bench/real_pbx_load.py, #13 row 5).
                replies = session.send_many(mapping.SESSION_SETUP)
                for command, reply in zip(mapping.SESSION_SETUP, replies, strict=True):
                    if not str(reply.data).startswith("+OK"):
                        raise PbxError(f"{command!r} refused: {reply.data!r}")
        except (PbxError, NotConnectedError, OSError) as exc:
            log.warning("outbound socket from %s: %s", link.peer, exc)
            if opened:
                session.stop(timeout=1.0)  # its on_closed tells the asyncio side
            return False
        return True
