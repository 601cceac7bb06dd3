"""Group commit of the outbox worker's results: the attempts that finish while one commit is
under way are written together by the next one (`lease.settle_many`).

Ten deliveries in flight used to commit ten separate transactions; on SQLite they queued for
the single write lock, each one sleeping in the busy handler, and delivery ran at about 200
callbacks/s (bench/delivery.py). Each result is still committed before `settle` returns, so
durability is unchanged: a result is acknowledged only once it is on disk.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks import lease

__all__ = ["GroupSettler"]


class GroupSettler:
    """``await settler.settle(row_id, values)``: the row's result, committed (see the module
    docstring); False when the claim was lost meanwhile, as `lease.settle`."""

    def __init__(self, engine: AsyncEngine, node_id: str) -> None:
        self._engine = engine
        self._node_id = node_id
        self._waiting: list[tuple[int, dict[str, Any], asyncio.Future[bool]]] = []
        # One commit at a time: the others' results wait here. The worker's claims take it
        # too (`writing`), so its own transactions never queue for SQLite's write lock.
        self._commit = asyncio.Lock()

    @property
    def writing(self) -> asyncio.Lock:
        """Held while the worker writes (a claim round or a group of results)."""
        return self._commit

    async def settle(self, row_id: int, values: dict[str, Any]) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row_id, values, done))
        async with self._commit:
            if not done.done():  # nobody committed ours yet: commit everything waiting
                batch, self._waiting = self._waiting, []
                try:
                    written = await lease.settle_many(
                        self._engine, [(r, v) for r, v, _f in batch], self._node_id)
                except BaseException as exc:
                    # Every other waiter of this batch gets the failure (a cancellation as
                    # cancelled); this settle raises it itself, so its own future is left
                    # unset (else nobody would read it: "exception was never retrieved").
                    for _r, _v, future in batch:
                        if future is done or future.done():
                            continue
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
                    raise
                for (_r, _v, future), ok in zip(batch, written, strict=True):
                    future.set_result(ok)
        return done.result()
