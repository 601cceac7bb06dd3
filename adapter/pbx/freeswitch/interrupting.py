"""Cutting a FreeSWITCH call's running application short (a REST redirect), until it ends.

One ``uuid_break`` is not enough: ``switch_core_session_exec`` clears the break flag as it
starts each application, so a break sent before the queued application starts is lost, and one
sent after it ended cannot cut the next. So the cut (``uuid_break``, or during a `<Dial>`
``uuid_kill`` of its legs, as a bridge does not stop on a break) is repeated with growing pauses
until the application's CHANNEL_EXECUTE_COMPLETE arrives. Each cut is awaited: none is on its
way at return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from adapter.pbx.base import PbxError

__all__ = ["INTERRUPT_WAIT", "cut_until_done"]

# How long the cuts go on before giving up.
INTERRUPT_WAIT = 10.0
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0


async def cut_until_done(uuid: str, running: Collection[asyncio.Future[Any]], *,
                         cut: Callable[[], Awaitable[None]],
                         check_gone: Callable[[], None]) -> None:
    """`cut()` until every `running` completion is done; `check_gone` raises once the call
    has hung up. PbxError when a cut fails or the application outlasts `INTERRUPT_WAIT`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + INTERRUPT_WAIT
    pause = FIRST_PAUSE
    while True:
        try:
            await cut()
        except PbxError as exc:
            raise PbxError(f"{uuid}: cannot interrupt: {exc}") from exc
        await asyncio.wait(running, timeout=pause)
        if all(w.done() for w in running):
            return
        check_gone()
        if loop.time() >= deadline:
            raise PbxError(f"{uuid}: the running application did not stop within "
                           f"{INTERRUPT_WAIT:.0f} s")
        pause = min(pause * 2, LONGEST_PAUSE)
