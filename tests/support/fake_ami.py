"""A minimal Asterisk manager (AMI) on 127.0.0.1 for tests that need exact control of the bytes.

It greets like Asterisk 22, answers ``Login`` (checking the secret), ``Filter``, ``Ping`` and
``AGI`` (a Response, then an ``AsyncAGIExec`` event carrying the command's ``CommandID`` and a
``200 result=0`` reply), records every action it receives, and lets the test push raw bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def frame(headers: Mapping[str, str]) -> bytes:
    """One AMI frame: ``Key: value`` lines and the blank line, UTF-8."""
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


@dataclass
class FakeAmi:
    secret: str
    username: str = "adapter"
    actions: list[dict[str, str]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _writer: asyncio.StreamWriter | None = None
    _handlers: list[asyncio.Task[None]] = field(default_factory=list)
    port: int = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for handler in self._handlers:  # each ends on the EOF of its closed connection
            await handler
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def push(self, data: bytes) -> None:
        """Write raw bytes to the connected adapter."""
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        writer.write(GREETING)
        await writer.drain()
        self.connected.set()
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action: dict[str, str] = {}
                for line in raw.decode("utf-8", "replace").split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        action[key] = value
                self.actions.append(action)
                writer.write(self._answer(action))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _answer(self, action: Mapping[str, str]) -> bytes:
        name = action.get("Action", "").lower()
        base = {"ActionID": action.get("ActionID", "")}
        if name == "login":
            ok = action.get("Username") == self.username and action.get("Secret") == self.secret
            if ok:
                return frame({"Response": "Success", **base,
                              "Message": "Authentication accepted"})
            return frame({"Response": "Error", **base, "Message": "Authentication failed"})
        if name == "ping":
            return frame({"Response": "Success", **base, "Ping": "Pong"})
        if name == "agi":
            return frame(
                {"Response": "Success", **base, "Message": "Added AGI command to queue"}
            ) + frame({
                "Event": "AsyncAGIExec",
                "Channel": action.get("Channel", ""),
                "CommandId": action.get("CommandID", ""),
                "Result": quote("200 result=0\n"),
            })
        return frame({"Response": "Success", **base})
