"""Group commit of the outbox's producers: the callbacks queued while one commit is under way
are committed together by the next one (`rows.insert_rows`).

Every `enqueue` was its own transaction (bench/delivery.py: one commit per callback); under a
burst of calls ending together, concurrent producers now share one. Each row is still committed
before its `enqueue` returns, so durability is unchanged, and the rows of one batch get their
ids in the order they were queued, so the order per key holds. A batch that breaks a constraint
(an event id queued before: `Outbox.enqueue`'s once-per-event rule) is committed again row by
row, so only the row at fault sees the error.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks import rows

__all__ = ["GroupQueue"]


class GroupQueue:
    """``await queue.insert(values)``: the committed row's id (see the module docstring);
    IntegrityError as `rows.insert_row` raises it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[dict[str, object], asyncio.Future[int]]] = []
        self._commit = asyncio.Lock()  # one batch at a time; the next one gathers meanwhile

    async def insert(self, values: dict[str, object]) -> int:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, done))
        async with self._commit:
            if not done.done():  # nobody committed ours yet: commit everything waiting
                batch, self._waiting = self._waiting, []
                # Shielded: a producer cancelled meanwhile must not fail the others' rows.
                await asyncio.shield(self._commit_batch(batch))
        return done.result()

    async def _commit_batch(self, batch: list[tuple[dict[str, object], asyncio.Future[int]]]
                            ) -> None:
        try:
            try:
                ids = await rows.insert_rows(self._engine, [v for v, _f in batch])
            except IntegrityError:
                if len(batch) == 1:
                    raise
                for values, future in batch:  # find the row at fault: each on its own
                    try:
                        future.set_result((await rows.insert_rows(self._engine, [values]))[0])
                    except IntegrityError as exc:
                        future.set_exception(exc)
                return
        except Exception as exc:  # e.g. the database is down: every waiter sees it
            for _v, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_v, future), row_id in zip(batch, ids, strict=True):
            future.set_result(row_id)
