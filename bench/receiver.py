"""A local callback receiver in its own process (so it never shares the measured loop): an
aiohttp server that parses each form POST and answers 204. ``python -m bench.receiver`` prints
its port, then serves until stdin closes; `Receiver` runs it from a benchmark.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from types import TracebackType

__all__ = ["Receiver"]


class Receiver:
    """``with Receiver() as r: … r.url …``: the receiver process, ended at exit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Receiver:
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.receiver"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        port = int(self._proc.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/status"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


async def _serve() -> None:
    from aiohttp import web

    async def status(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_serve())
