"""The outbox worker's results, written by its next claim round: `ResultQueue`.

An attempt's result (delivered, due again, failed) is written in the same transaction as the
worker's next claim round, before its claims (`lease.settle_steps`, then `lease.claim`), so
one transaction both frees a row's slot and fills it again. Written on their own, results and
claim rounds were two transactions per callback, each waiting for the one SQLite connection
and for a turn of the loop: 1,000 queued callbacks took 600 transactions, 220 now, and went
out at 960-1,140/s against 1,220-1,560/s now (bench/delivery.py's runs, issue #13 row 3).

Each result is still committed before `settle` returns, so durability is unchanged: a result
is acknowledged only once it is on disk. A round that fails hands its error to every result
it held (the worker writes them again: `OutboxWorker._settle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Result", "ResultQueue"]

Result = tuple[int, dict[str, Any], "asyncio.Future[bool]"]
"""A row id, the values of its attempt's result, and the future its writer waits on."""


class ResultQueue:
    """``await results.settle(row_id, values)``: the row's result, committed by the next round
    (`take`, then `written` or `failed`); False when the claim was lost meanwhile (its lease
    ran out: nothing is written). `wake` starts a round."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._waiting: list[Result] = []

    async def settle(self, row_id: int, values: dict[str, Any]) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row_id, values, done))
        self._wake()
        return await done

    def take(self) -> list[Result]:
        """Every result waiting, for the round about to run."""
        batch, self._waiting = self._waiting, []
        return batch

    @staticmethod
    def written(batch: Sequence[Result], written: Sequence[bool]) -> None:
        """The round committed `batch`: for each, whether its claim still held."""
        for (_row, _values, done), ok in zip(batch, written, strict=True):
            if not done.done():  # (a writer cancelled meanwhile: its result is written still)
                done.set_result(ok)

    @staticmethod
    def failed(batch: Sequence[Result], exc: BaseException) -> None:
        """The round holding `batch` failed (nothing of it was written)."""
        for _row, _values, done in batch:
            if done.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                done.cancel()
            else:
                done.set_exception(exc)
