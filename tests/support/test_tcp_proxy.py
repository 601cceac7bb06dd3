"""tests/support/tcp_proxy.py on its own (no PBX): it pipes both ways, `cut` resets both
sides of every connection, `refuse` resets new ones (counted) until it is lifted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tcp_proxy import TcpProxy


@pytest.fixture
async def echo() -> AsyncIterator[tuple[tuple[str, int], list[asyncio.StreamReader]]]:
    """An echo server; the list gets the server side's reader of each connection."""
    readers: list[asyncio.StreamReader] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        readers.append(reader)
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield (host, port), readers
    server.close()


async def test_pipes_then_cut_resets_both_sides(
    echo: tuple[tuple[str, int], list[asyncio.StreamReader]],
) -> None:
    target, server_readers = echo
    proxy = TcpProxy(target)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(b"hello\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"hello\n"
        assert (proxy.attempts, proxy.connections, proxy.open_connections) == (1, 1, 1)
        assert proxy.cut() == 1
        with pytest.raises(ConnectionResetError):  # a reset, not a polite end of stream
            await asyncio.wait_for(reader.read(), 5)
        with pytest.raises(ConnectionResetError):  # the server's side too
            await asyncio.wait_for(server_readers[0].read(), 5)
        assert proxy.open_connections == 0
        writer.close()
    finally:
        await proxy.stop()


async def test_refuse_then_accept_again(
    echo: tuple[tuple[str, int], list[asyncio.StreamReader]],
) -> None:
    target, server_readers = echo
    proxy = TcpProxy(target)
    await proxy.start()
    try:
        proxy.refuse(True)
        reader, writer = await asyncio.open_connection(*proxy.address)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await proxy.wait_attempts(1)
        assert (proxy.attempts, proxy.connections, len(server_readers)) == (1, 0, 0)
        proxy.refuse(False)
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(b"again\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"again\n"
        assert (proxy.attempts, proxy.connections) == (2, 1)
        assert proxy.attempt_times[0] <= proxy.attempt_times[1]
        writer.close()
    finally:
        await proxy.stop()
