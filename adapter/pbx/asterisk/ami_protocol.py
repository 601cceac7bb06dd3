"""panoramisk's AMI protocol with bytes-level framing, bounds, and no secret in any log line.

Passed to panoramisk's `Manager` as ``protocol_factory``. It changes three things and keeps the
rest of panoramisk (action bookkeeping, event dispatch, reconnects):

- `data_received` buffers bytes and decodes only whole frames (`ami_frames.AmiFrameReader`), so a
  UTF-8 caller name split across two TCP reads arrives intact; an oversized frame or header line
  is dropped with one WARNING and the connection carries on;
- a frame that fails to parse, or an event handler that raises, costs that one message, never
  the connection (panoramisk lets the exception escape `data_received`, and asyncio then closes
  the transport);
- `send` never prints the action when it fails (panoramisk logs ``'Fail to send %r'`` with the
  whole action, the Login's ``Secret`` included) and fails the action's future instead of leaving
  the caller waiting for a Response that will never come.
"""

from __future__ import annotations

import logging
from typing import Any

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol

from adapter.pbx.asterisk.ami_frames import AmiFrameReader, Dropped, MalformedFrame, parse_frame
from adapter.pbx.base import PbxError

__all__ = ["FramedAmiProtocol"]

log = logging.getLogger(__name__)


class FramedAmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk ships no types
    """See the module docstring."""

    version: str | None  # Asterisk's AMI version, from the greeting line
    reader: AmiFrameReader

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.reader = AmiFrameReader()

    def data_received(self, data: bytes) -> None:
        items = self.reader.feed(data)
        if self.version is None and self.reader.version is not None:
            self.version = self.reader.version
            log.info("AMI: Asterisk Call Manager %s", self.version)
        for item in items:
            if isinstance(item, Dropped):
                log.warning("AMI: dropped a frame from Asterisk: %s (%d bytes)",
                            item.reason, item.size)
                continue
            try:
                message = parse_frame(item)
            except MalformedFrame as exc:
                log.warning("AMI: dropped a malformed frame from Asterisk: %s", exc)
                continue
            if message is None:
                continue
            try:
                self.handle_message(message)
            except Exception:
                log.exception("AMI: handling %s %s failed",
                              "event" if "event" in message else "response",
                              message.get("event") or message.get("response"))

    def send(self, data: Any, as_list: bool = False) -> Any:
        """panoramisk's `send`, except on failure: see the module docstring."""
        if not isinstance(data, actions.Action):
            kind = actions.Command if "Command" in data else actions.Action
            data = kind(data, as_list=as_list)
        data.as_list = as_list
        self.responses[data.id] = data
        if data.action_id:
            self.responses[data.action_id] = data
        try:
            self.transport.write(str(data).encode(getattr(self, "encoding", "utf-8")))
        except Exception as exc:
            name = data.get("action", "?")
            self.responses.pop(data.id, None)
            if data.action_id:
                self.responses.pop(data.action_id, None)
            log.error("AMI: could not send the %s action (%s)", name, type(exc).__name__)
            if not data.future.done():
                data.future.set_exception(
                    PbxError(f"AMI {name}: could not be sent ({type(exc).__name__})")
                )
        return data.future
