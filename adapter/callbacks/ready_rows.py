"""Rows a worker claimed ahead of a free slot: `ReadyRows`.

A claim round claims up to twice the worker's slots (``max_parallel``): the rows beyond the
free slots wait here, already claimed, and a slot freed by an attempt's end starts the next one
at once instead of waiting for the next round's transaction (which writes that attempt's
result and tops the rows up again). Before, a freed slot waited for a round to begin and end:
on PostgreSQL, six round trips (issue #13 row 3).

A row waits at most `max_wait` seconds (loop time) from its claim. Older, it is not started
(its lease is partly spent, and its slot may be long in coming: every slot stalled by a slow
receiver): the next round gives it back untried (`lease.give_back_steps`), and claims it again
with a fresh lease when a slot is free.
"""

from __future__ import annotations

from collections import deque

from adapter.callbacks.rows import OutboxRow

__all__ = ["ReadyRows"]


class ReadyRows:
    """Claimed rows waiting for a slot, oldest claim first (see the module docstring)."""

    def __init__(self, max_wait: float) -> None:
        self._max_wait = max_wait
        self._rows: deque[tuple[OutboxRow, float]] = deque()  # (row, its claim's loop time)
        self._stale: list[int] = []  # waited too long: to give back

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: list[OutboxRow], claimed_at: float) -> None:
        self._rows.extend((row, claimed_at) for row in rows)

    def next(self, now: float) -> tuple[OutboxRow, float] | None:
        """The oldest row that may still start at loop time `now` (and its claim's time), or
        None; rows that waited too long are set aside for `take_stale`."""
        self._age(now)
        return self._rows.popleft() if self._rows else None

    @property
    def has_stale(self) -> bool:
        return bool(self._stale)

    def take_stale(self, now: float) -> list[int]:
        """The ids of the rows that waited too long by loop time `now`, no longer here."""
        self._age(now)
        stale, self._stale = self._stale, []
        return stale

    def drain(self) -> list[int]:
        """Every row's id (stale ones included), none left: the worker stops."""
        ids = self._stale + [row.id for row, _at in self._rows]
        self._stale, self._rows = [], deque()
        return ids

    def _age(self, now: float) -> None:
        while self._rows and now - self._rows[0][1] > self._max_wait:
            self._stale.append(self._rows.popleft()[0].id)
