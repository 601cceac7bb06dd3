"""A loopback TCP proxy that a test controls: put it between a client (the adapter's inbound
event socket connection, for instance) and a server (FreeSWITCH's event socket), then cut the
connections or refuse new ones on demand, as a network or a restarting server would.

    proxy = TcpProxy(("127.0.0.1", esl_port))
    await proxy.start()
    ...connect the client to proxy.address...
    proxy.cut()  # every connection through the proxy is reset, both ways, now
    proxy.refuse(True)  # new connections are reset as soon as they arrive (counted, timed)
    proxy.refuse(False)  # and accepted again
    proxy.hold()  # open connections stay up, but nothing is passed on, either way
    proxy.release()  # what was held is passed on, in order, and what follows
    await proxy.stop()

`refuse` keeps the listening socket open (so no other process can take the port, and every
attempt is seen): a refused connection is accepted by the kernel and reset at once, before a
byte is read or sent; the client sees its connection closed or reset. `attempts` counts every
connection that arrived, refused or not, with its time (``loop.time()``) in `attempt_times`;
`wait_attempts(n)` waits until `n` have arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

__all__ = ["TcpProxy"]

CHUNK = 65536


class TcpProxy:
    """127.0.0.1:<free port> → `target`, every connection piped both ways until cut."""

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.refusing = False
        self.attempts = 0  # connections that arrived (refused ones included)
        self.attempt_times: list[float] = []  # loop.time() of each arrival
        self.connections = 0  # connections piped through to the target
        self.cuts = 0  # connections ended by `cut`
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        # Open connections: (client side, target side).
        self._links: set[tuple[asyncio.WriteTransport, asyncio.WriteTransport]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()
        self._flowing = asyncio.Event()  # cleared by `hold`
        self._flowing.set()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect (after `start`)."""
        if self._address is None:
            raise RuntimeError("the proxy is not started")
        return self._address

    @property
    def open_connections(self) -> int:
        """Connections being piped right now."""
        return len(self._links)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self._address = (str(host), int(port))

    def refuse(self, refusing: bool = True) -> None:
        """From now on, reset new connections as they arrive (True) or pipe them (False).
        Connections already open are left alone (`cut` ends them)."""
        self.refusing = refusing

    def cut(self) -> int:
        """Reset every open connection now, both ways (the client and the target each see a
        reset, as when a network drops); returns how many connections were cut."""
        links, self._links = self._links, set()
        for client, target in links:
            _reset(client)
            _reset(target)
        self.cuts += len(links)
        return len(links)

    def hold(self) -> None:
        """Stall every connection, open and new, both ways: they stay open, but what either
        side sends is kept back (a congested link, a peer that stopped reading) until
        `release`."""
        self._flowing.clear()

    def release(self) -> None:
        """Pass on what `hold` kept back, in order, and everything after it."""
        self._flowing.set()

    async def wait_attempts(self, count: int, *, within: float = 10.0) -> None:
        """Until `count` connections have arrived since `start` (refused ones included)."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: self.attempts >= count)

    async def stop(self) -> None:
        """Stop listening and cut every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    # --- inside ---------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._arrived:
            self.attempts += 1
            self.attempt_times.append(asyncio.get_running_loop().time())
            self._arrived.notify_all()
        if self.refusing or self._server is None:
            _reset(writer.transport)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer.transport)
            return
        if self.refusing or self._server is None:  # refused or stopped while connecting
            _reset(writer.transport)
            _reset(up_writer.transport)
            return
        self.connections += 1
        link = (writer.transport, up_writer.transport)
        self._links.add(link)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    link: tuple[asyncio.WriteTransport, asyncio.WriteTransport]) -> None:
        try:
            while data := await source.read(CHUNK):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side closed (or was reset): the connection is over, both ways.
            self._links.discard(link)
            for transport in link:
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    transport.close()


def _reset(transport: asyncio.WriteTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a FIN: the peer's next read fails at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
