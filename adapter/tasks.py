"""Supervised background tasks: every task the adapter spawns is named, kept referenced until it
ends, has its failure logged (never silently dropped), and is cancelled when its owner stops.

One `TaskSet` per owner (a driver, a call's recorder, the outbox, the service). asyncio keeps
only weak references to tasks, so a task nobody holds may be collected mid-way; and an exception
nobody retrieves is reported only at garbage collection, far from its cause. This is the one
place that handles both (the shape of genesis' dispatcher, starlette's background tasks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TaskSet"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskSet:
    """The running background tasks of one owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `work` in the background as task `name`; a failure is logged with both names."""
        task = asyncio.get_running_loop().create_task(work, name=f"{self.owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Until every task spawned so far, and every task those spawn meanwhile, has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        """Cancel every running task and wait until they have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
