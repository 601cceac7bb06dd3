"""Durable status callbacks: nothing is lost across a restart.

`Outbox.enqueue` commits the callback to the ``outbox`` table (in the Store's database) before
returning; a background worker delivers it through the WebhookClient.

Delivery rules:

* In order per key (e.g. the RecordingSid): a key's next row is not sent before the previous one
  is delivered or has finally failed. Different keys are delivered in parallel, at most
  `max_parallel` at a time.
* At least once: a row is marked ``sending`` before its request; rows a crash left ``sending`` go
  back to ``pending`` when the next Outbox starts. Every attempt of a row carries the same
  ``I-Twilio-Idempotency-Token`` so the receiver can spot a repeat.
* Retries with back-off (`backoff[attempt - 1]`, the last value repeating) after connection
  failures, timeouts, DNS/TLS errors and 5xx answers. A 4xx answer is final, as Twilio never
  retries a callback the app rejected; so are errors that cannot heal by themselves (invalid URL,
  redirect loop or invalid redirect). After `max_attempts` the row is ``failed`` with its last
  error and a WARNING is logged.
* A 2xx answer whose body is too large still counts as delivered: Twilio ignores the body of a
  status callback answer.

Twilio itself retries a failed status callback only when the URL's connection overrides
(``#rc=..&rp=..``) ask for it; the outbox is more persistent on purpose, so a restart or an
outage of the customer's app does not silently drop callbacks.

One Outbox (one process) per database: claiming rows is not safe across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from adapter.errors import TwilioError
from adapter.recordings.store import Store, UTCDateTime, metadata, utcnow
from adapter.webhooks import (
    BODY_TOO_LARGE,
    INVALID_REDIRECT,
    INVALID_URL,
    TOO_MANY_REDIRECTS,
    WebhookClient,
    WebhookError,
)

__all__ = ["Outbox", "OutboxRow", "OutboxState", "outbox_table"]

log = logging.getLogger(__name__)

OutboxState = Literal["pending", "sending", "delivered", "failed"]

_OPEN_STATES: Final = ("pending", "sending")
_FINAL_CODES: Final = frozenset({INVALID_URL, TOO_MANY_REDIRECTS, INVALID_REDIRECT})
# Last resort when no error carries a Twilio code (a bug rather than the network).
_UNEXPECTED_ERROR_CODE: Final = 11200

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text),
    Column("last_error_code", Integer),
    Column("idempotency_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index("ix_outbox_state_due", "state", "next_attempt_at"),
    Index("ix_outbox_key_id", "key", "id"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow:
    """One queued callback. `last_error` reads ``"<code>: <message>"``."""

    id: int
    key: str
    url: str
    method: str
    params: tuple[tuple[str, str], ...]
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_error_code: int | None
    idempotency_token: str
    created_at: datetime
    delivered_at: datetime | None


def _row(mapping: RowMapping) -> OutboxRow:
    values = dict(mapping)
    values["params"] = tuple((str(k), str(v)) for k, v in json.loads(values["params"]))
    return OutboxRow(**values)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one delivery attempt ended in."""

    delivered: bool
    final: bool = False
    code: int | None = None
    message: str | None = None


def _outcome_of(exc: Exception) -> _Outcome:
    if isinstance(exc, WebhookError):
        status = exc.status
        if exc.code == BODY_TOO_LARGE and status is not None and 200 <= status < 300:
            return _Outcome(delivered=True)
        final = exc.code in _FINAL_CODES or (status is not None and 400 <= status < 500)
        return _Outcome(False, final, exc.code, str(exc))
    if isinstance(exc, TwilioError):
        return _Outcome(False, False, exc.code, str(exc))
    return _Outcome(False, False, _UNEXPECTED_ERROR_CODE, f"{_UNEXPECTED_ERROR_CODE}: {exc!r}")


class Outbox:
    """Durable, ordered-per-key delivery of callbacks through a WebhookClient."""

    def __init__(
        self,
        store: Store,
        client: WebhookClient,
        *,
        max_attempts: int = 5,
        backoff: Sequence[float] = (1, 2, 4, 8, 16),
        max_parallel: int = 10,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not backoff or any(b < 0 for b in backoff):
            raise ValueError("backoff needs at least one non-negative delay")
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self._engine = store.engine
        self._client = client
        self._max_attempts = max_attempts
        self._backoff = tuple(float(b) for b in backoff)
        self._max_parallel = max_parallel
        self._clock = clock
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._generation = 0  # bumped by every enqueue; guards `_idle` against a stale check
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._worker: asyncio.Task[None] | None = None

    # -- producer side ------------------------------------------------------------------------

    async def enqueue(
        self, key: str, url: str, method: str, params: Sequence[tuple[str, str]]
    ) -> int:
        """Queue a callback; it is committed when this returns. Returns the row id."""
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"unsupported callback method {method!r}")
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                insert(outbox_table).values(
                    key=key,
                    url=url,
                    method=method,
                    params=json.dumps([[k, v] for k, v in params]),
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    idempotency_token=str(uuid.uuid4()),
                    created_at=now,
                )
            )
        row_id = result.inserted_primary_key
        assert row_id is not None
        self._generation += 1
        self._idle.clear()
        self._wake.set()
        return int(row_id[0])

    async def pending(self) -> list[OutboxRow]:
        """Rows not yet delivered nor failed (``pending`` or ``sending``), oldest first."""
        return await self._rows_in(_OPEN_STATES)

    async def failed(self) -> list[OutboxRow]:
        """Rows that exhausted their attempts or met a final error, oldest first."""
        return await self._rows_in(("failed",))

    async def _rows_in(self, states: Sequence[str]) -> list[OutboxRow]:
        query = select(outbox_table).where(outbox_table.c.state.in_(states))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(outbox_table.c.id))).mappings().all()
        return [_row(r) for r in rows]

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker. Rows a previous run left ``sending`` are sent again."""
        if self._worker is not None:
            return
        async with self._engine.begin() as conn:
            await conn.run_sync(outbox_table.create, checkfirst=True)
            recovered = await conn.execute(
                update(outbox_table)
                .where(outbox_table.c.state == "sending")
                .values(state="pending")
            )
        if recovered.rowcount:
            log.info("outbox: %d interrupted callback(s) will be sent again", recovered.rowcount)
        self._idle.clear()
        self._wake.set()
        self._worker = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop the worker; callbacks in flight are abandoned and sent again on next start."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.cancel()
        abandoned = list(self._in_flight)
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(worker, *tasks, return_exceptions=True)
        self._in_flight.clear()
        if abandoned:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id.in_(abandoned), outbox_table.c.state == "sending")
                    .values(state="pending")
                )

    async def wait_idle(self, timeout: float) -> None:  # noqa: ASYNC109 - the public API
        """Wait until no row is pending or sending; TimeoutError after `timeout` seconds.

        Only a started Outbox can become idle (RuntimeError otherwise)."""
        if self._worker is None:
            raise RuntimeError("Outbox.start() has not been called")
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    # -- worker ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            generation = self._generation
            try:
                delay = await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: dispatch failed; retrying shortly")
                delay = 1.0
            else:
                if delay is None and not self._in_flight and generation == self._generation:
                    self._idle.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _dispatch_due(self) -> float | None:
        """Start deliveries for the due head row of each idle key.

        Returns seconds until the next row falls due, 0 if more are due than could start,
        or None when nothing is open (pending or sending).
        """
        # Snapshot before reading: a head shown as ``sending`` that was not in flight then is
        # an orphan (its result could not be recorded) and is sent again.
        in_flight = set(self._in_flight)
        free = self._max_parallel - len(in_flight)
        now = self._clock()
        async with self._engine.begin() as conn:
            heads = await self._head_rows(conn)
            due = [
                h for h in heads
                if (h["state"] == "pending" and h["next_attempt_at"] <= now)
                or (h["state"] == "sending" and h["id"] not in in_flight)
            ]
            started = due[: max(free, 0)]
            if started:
                await conn.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id.in_([h["id"] for h in started]))
                    .values(state="sending", attempts=outbox_table.c.attempts + 1)
                )
        for head in started:
            row = _row(head)
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._in_flight[row.id] = task
        if not heads and not self._in_flight:
            return None
        if len(due) > len(started):
            return None if self._in_flight else 0.0
        waiting: list[datetime] = [
            h["next_attempt_at"]
            for h in heads
            if h["state"] == "pending" and h["next_attempt_at"] > now
        ]
        if not waiting:
            return None if self._in_flight else 0.0
        return max((min(waiting) - now).total_seconds(), 0.0)

    @staticmethod
    async def _head_rows(conn: AsyncConnection) -> list[RowMapping]:
        """For every key with open rows, its oldest open row (the only one that may be sent)."""
        firsts = (
            select(outbox_table.c.key, func.min(outbox_table.c.id).label("first_id"))
            .where(outbox_table.c.state.in_(_OPEN_STATES))
            .group_by(outbox_table.c.key)
            .subquery()
        )
        query = (
            select(outbox_table)
            .join(firsts, outbox_table.c.id == firsts.c.first_id)
            .order_by(outbox_table.c.next_attempt_at, outbox_table.c.id)
        )
        return list((await conn.execute(query)).mappings().all())

    async def _deliver(self, row: OutboxRow) -> None:
        attempt = row.attempts + 1
        try:
            try:
                await self._client.request(
                    row.url, row.method, row.params, idempotency_token=row.idempotency_token
                )
                outcome = _Outcome(delivered=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, TwilioError):
                    log.exception("outbox: unexpected error delivering row %d", row.id)
                outcome = _outcome_of(exc)
            await self._record(row, attempt, outcome)
        finally:
            self._in_flight.pop(row.id, None)
            self._wake.set()

    async def _record(self, row: OutboxRow, attempt: int, outcome: _Outcome) -> None:
        now = self._clock()
        values: dict[str, object]
        if outcome.delivered:
            values = {"state": "delivered", "delivered_at": now}
        elif outcome.final or attempt >= self._max_attempts:
            values = {"state": "failed", "last_error": outcome.message,
                      "last_error_code": outcome.code}
            log.warning(
                "outbox: callback %d (key %s) to %s %s failed after %d attempt(s): %s",
                row.id, row.key, row.method, row.url, attempt, outcome.message,
            )
        else:
            delay = self._backoff[min(attempt, len(self._backoff)) - 1]
            values = {
                "state": "pending",
                "last_error": outcome.message,
                "last_error_code": outcome.code,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox_table).where(outbox_table.c.id == row.id).values(values)
            )
