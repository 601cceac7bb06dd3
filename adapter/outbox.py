"""Durable status callbacks: nothing is lost across a restart, nothing is sent twice by two nodes.

`Outbox.enqueue` commits the callback to the ``outbox`` table (in the Store's database) before
returning; a background worker delivers it through the WebhookClient.

Delivery rules:

* In order per key (e.g. the RecordingSid): a key's next row is not sent before the previous one
  is delivered or has finally failed. Different keys are delivered in parallel, at most
  `max_parallel` at a time per node.
* Claims with a lease: a worker claims a row (``sending``, ``claimed_by`` = its node id,
  ``lease_until`` = now + `lease`) before the request. On PostgreSQL the claim reads the due rows
  with ``SELECT … FOR UPDATE SKIP LOCKED`` and every claim is a compare-and-set on the row's
  state and attempt count, so several adapter nodes sharing one database never send the same
  attempt twice. A row whose lease ran out (its node died mid-send) is claimed again by any
  node. An attempt never outlives its claim: it is cut off before the lease ends.
* At least once: a node that starts again puts its own ``sending`` rows back to ``pending`` at
  once (SQLite, single node: every ``sending`` row). Every attempt of a row carries the same
  ``I-Twilio-Idempotency-Token`` so the receiver can spot a repeat.
* Twilio's connection overrides in the URL's fragment (``#ct=..&rt=..&tt=..&rc=..&rp=..``, see
  `adapter.connection_overrides`) shape each attempt exactly as Twilio would: up to ``1 + rc``
  requests, the failures ``rp`` names retried at once, all within ``tt``. An invalid ``rp``
  fails the row with 11243 without a request; running out of an explicit ``tt`` is 11203.
* Then the outbox's own persistence on top (Twilio would give up here): an attempt that failed
  with something that can heal (connection failures, timeouts, 5xx, and 4xx when ``rp`` asks for
  4xx retries) is tried again after `backoff[attempt - 1]` (the last value repeating), up to
  `max_attempts` attempts (by default 30 attempts over about 19 hours). A 4xx answer is
  otherwise final, as Twilio never retries a callback the app rejected; so are errors that
  cannot heal by themselves (invalid URL, redirect loop or invalid redirect, invalid
  overrides). A row that finally fails is ``failed`` with its last error and Twilio's code
  (11200/11205 family), and a WARNING is logged.
* A 2xx answer whose body is too large still counts as delivered: Twilio ignores the body of a
  status callback answer.

* Once per event: a callback queued with an ``event`` id (e.g. ``RE…:completed``) is queued at
  most once, whoever queues it (the call's session, startup recovery, a sweep, another node):
  the id has a unique index, so a second `enqueue` of it is a no-op that returns None. This is
  what keeps a recovery racing a sweep, or two recoveries, from reporting a recording twice.

SQLite has a single writer and no row locks: one adapter node per SQLite database (the claims
are compare-and-set there too, but a starting node resets every ``sending`` row).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapter.connection_overrides import (
    TOTAL_TIMEOUT_TRIGGERED,
    ConnectionOverrides,
    Failure,
    OverrideError,
    failure_for_status,
    parse_fragment,
)
from adapter.errors import TwilioError
from adapter.metrics import Metrics
from adapter.recordings.store import Store, UTCDateTime, metadata, utcnow
from adapter.webhooks import (
    BAD_HOST_NAME,
    BODY_TOO_LARGE,
    CONNECTION_FAILURE,
    INVALID_REDIRECT,
    INVALID_URL,
    TOO_MANY_REDIRECTS,
    WebhookClient,
    WebhookError,
    split_fragment,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_ATTEMPTS",
    "OPEN_STATES",
    "Outbox",
    "OutboxRow",
    "OutboxState",
    "call_status_event",
    "default_node_id",
    "ensure_outbox_schema",
    "list_outbox_rows",
    "outbox_table",
    "record_action_event",
    "recording_event",
]

log = logging.getLogger(__name__)

OutboxState = Literal["pending", "sending", "delivered", "failed"]

OPEN_STATES: Final = ("pending", "sending")
_FINAL_CODES: Final = frozenset({INVALID_URL, TOO_MANY_REDIRECTS, INVALID_REDIRECT})
# By default a callback is tried for about 19 hours (30 attempts; the delays below, then hourly)
# before it is given up: an app that is down overnight still gets every callback.
DEFAULT_BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                          3600.0)
DEFAULT_MAX_ATTEMPTS: Final = 30
# Last resort when no error carries a Twilio code (a bug rather than the network).
_UNEXPECTED_ERROR_CODE: Final = 11200
# PostgreSQL advisory lock key serialising schema changes of several starting nodes.
_SCHEMA_LOCK_KEY: Final = 0x7477_6D6C_6F62

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
    Column("claimed_by", String(128)),
    Column("lease_until", UTCDateTime()),
    # What the callback reports, e.g. "RE…:completed": queued at most once (NULL: no such rule).
    Column("event", String(128)),
    Index("ix_outbox_state_due", "state", "next_attempt_at"),
    Index("ix_outbox_key_id", "key", "id"),
    Index("ux_outbox_event", "event", unique=True),
)

# Columns added after the first release: created on start in an existing database.
_ADDED_COLUMNS: Final = {"claimed_by": "VARCHAR(128)", "lease_until": "TIMESTAMP WITH TIME ZONE",
                         "event": "VARCHAR(128)"}


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow:
    """One queued callback. `last_error` reads ``"<code>: <message>"``; `claimed_by` and
    `lease_until` are set while a node is sending it."""

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
    claimed_by: str | None = None
    lease_until: datetime | None = None
    event: str | None = None


def _row(mapping: RowMapping) -> OutboxRow:
    values = dict(mapping)
    values["params"] = tuple((str(k), str(v)) for k, v in json.loads(values["params"]))
    return OutboxRow(**values)


# Event ids (`Outbox.enqueue(event=...)`): what a callback reports, queued at most once.


def recording_event(recording_sid: str, status: str) -> str:
    """A recording's status callback (``in-progress``, ``completed``, ``absent``)."""
    return f"{recording_sid}:{status}"


def record_action_event(recording_sid: str) -> str:
    """The action request of a `<Record>` made after the call ended (fire-and-forget)."""
    return f"{recording_sid}:action"


def call_status_event(call_sid: str, event: str) -> str:
    """A REST call's status callback (``initiated``, ``ringing``, ``answered``,
    ``completed``)."""
    return f"{call_sid}:call:{event}"


def default_node_id() -> str:
    """A node id unique to this process: host name, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def list_outbox_rows(
    engine: AsyncEngine, states: Sequence[str] | None = None, *, limit: int | None = None
) -> list[OutboxRow]:
    """Rows in `states` (all when None), oldest first."""
    query = select(outbox_table).order_by(outbox_table.c.id)
    if states is not None:
        query = query.where(outbox_table.c.state.in_(list(states)))
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_row(r) for r in rows]


async def ensure_outbox_schema(conn: AsyncConnection) -> None:
    """The outbox table, and the columns newer releases added, in any existing database."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    await conn.run_sync(outbox_table.create, checkfirst=True)

    def missing_columns(sync: Connection) -> list[str]:
        present = {c["name"] for c in inspect(sync).get_columns("outbox")}
        return [name for name in _ADDED_COLUMNS if name not in present]

    for name in await conn.run_sync(missing_columns):
        await conn.execute(text(f"ALTER TABLE outbox ADD COLUMN {name} {_ADDED_COLUMNS[name]}"))
        log.info("outbox: added column %s", name)
    # An index on an added column: create_all made it only for a new table.
    await conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS ux_outbox_event ON outbox (event)"))


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one delivery attempt (one or more requests) ended in."""

    delivered: bool
    final: bool = False
    code: int | None = None
    message: str | None = None
    failure: Failure = Failure.OTHER


def _failure_of(exc: WebhookError) -> Failure:
    if exc.status is not None:
        return failure_for_status(exc.status)
    if exc.code == CONNECTION_FAILURE:
        # WebhookClient words a response timeout "timed out waiting for the response"; every
        # other 11205 is about establishing the connection.
        return Failure.READ if "waiting for the response" in exc.message else Failure.CONNECT
    if exc.code == BAD_HOST_NAME:
        return Failure.CONNECT
    return Failure.OTHER


def _outcome_of(exc: Exception) -> _Outcome:
    if isinstance(exc, WebhookError):
        status = exc.status
        if exc.code == BODY_TOO_LARGE and status is not None and 200 <= status < 300:
            return _Outcome(delivered=True)
        return _Outcome(False, exc.code in _FINAL_CODES, exc.code, str(exc), _failure_of(exc))
    if isinstance(exc, TwilioError):
        return _Outcome(False, False, exc.code, str(exc))
    return _Outcome(False, False, _UNEXPECTED_ERROR_CODE, f"{_UNEXPECTED_ERROR_CODE}: {exc!r}")


class Outbox:
    """Durable, ordered-per-key delivery of callbacks through a WebhookClient.

    `node_id` names this node in claims; give a stable one (e.g. host name and data folder) so a
    restarted node takes its interrupted rows back at once instead of after their lease.
    `poll_interval` is how often an idle worker looks for rows other nodes queued.
    """

    def __init__(
        self,
        store: Store,
        client: WebhookClient,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        max_parallel: int = 10,
        clock: Callable[[], datetime] = utcnow,
        node_id: str | None = None,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not backoff or any(b < 0 for b in backoff):
            raise ValueError("backoff needs at least one non-negative delay")
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if lease < 1:
            raise ValueError("lease must be at least 1 second")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._engine = store.engine
        self._client = client
        self._max_attempts = max_attempts
        self._backoff = tuple(float(b) for b in backoff)
        self._max_parallel = max_parallel
        self._clock = clock
        self.node_id = node_id or default_node_id()
        self._lease = lease
        self._poll_interval = poll_interval
        self._metrics = metrics
        self._open_rows = 0
        if metrics is not None:
            metrics.gauge("callbacks_open", lambda: float(self._open_rows))
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._generation = 0  # bumped by every enqueue; guards `_idle` against a stale check
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._worker: asyncio.Task[None] | None = None

    @property
    def _single_node(self) -> bool:
        return self._engine.dialect.name == "sqlite"

    # -- producer side ------------------------------------------------------------------------

    async def enqueue(
        self, key: str, url: str, method: str, params: Sequence[tuple[str, str]], *,
        event: str | None = None,
    ) -> int | None:
        """Queue a callback; it is committed when this returns. Returns the row id, or None
        when a callback with the same `event` id was queued before (nothing is queued)."""
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"unsupported callback method {method!r}")
        now = self._clock()
        try:
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
                        event=event,
                    )
                )
        except IntegrityError:
            if event is None or not await self._event_queued(event):
                raise
            log.info("outbox: %s was queued before; not queued again", event)
            return None
        row_id = result.inserted_primary_key
        assert row_id is not None
        self._generation += 1
        self._idle.clear()
        self._wake.set()
        return int(row_id[0])

    async def _event_queued(self, event: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.execute(
                select(outbox_table.c.id).where(outbox_table.c.event == event))
            return found.first() is not None

    async def pending(self) -> list[OutboxRow]:
        """Rows not yet delivered nor failed (``pending`` or ``sending``), oldest first."""
        return await list_outbox_rows(self._engine, OPEN_STATES)

    async def failed(self) -> list[OutboxRow]:
        """Rows that exhausted their attempts or met a final error, oldest first."""
        return await list_outbox_rows(self._engine, ("failed",))

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker. This node's ``sending`` rows (SQLite: all of them) are sent again;
        other nodes' rows only once their lease has run out."""
        if self._worker is not None:
            return
        async with self._engine.begin() as conn:
            await ensure_outbox_schema(conn)
            query = update(outbox_table).where(outbox_table.c.state == "sending")
            if not self._single_node:
                query = query.where(or_(outbox_table.c.claimed_by == self.node_id,
                                        outbox_table.c.claimed_by.is_(None)))
            recovered = await conn.execute(
                query.values(state="pending", claimed_by=None, lease_until=None)
            )
        if recovered.rowcount:
            log.info("outbox: %d interrupted callback(s) will be sent again", recovered.rowcount)
        self._idle.clear()
        self._wake.set()
        self._worker = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop the worker; callbacks in flight are abandoned and sent again later."""
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
                    .where(outbox_table.c.id.in_(abandoned),
                           outbox_table.c.state == "sending",
                           outbox_table.c.claimed_by == self.node_id)
                    .values(state="pending", claimed_by=None, lease_until=None)
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
                elif delay is not None:
                    self._idle.clear()
            # Idle: look again now and then for rows other nodes queued.
            wait = self._poll_interval if delay is None else min(delay, self._poll_interval)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _dispatch_due(self) -> float | None:
        """Claim and start the due head row of each idle key.

        Returns seconds until something may change (a row falls due, a foreign lease runs out;
        0 if more are due than could start), or None when nothing is open anywhere.
        """
        in_flight = set(self._in_flight)
        free = self._max_parallel - len(in_flight)
        now = self._clock()
        claimed: list[OutboxRow] = []
        async with self._engine.begin() as conn:
            heads = await self._head_rows(conn)
            self._open_rows = await self._count_open(conn)
            due = [h for h in heads if h["id"] not in in_flight and self._is_due(h, now)]
            if due and free > 0:
                claimed = await self._claim(conn, [h["id"] for h in due], free, now)
        for row in claimed:
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._in_flight[row.id] = task
        if not heads and not self._in_flight:
            return None
        if len(due) > len(claimed) and free > len(claimed):
            # Some due rows were taken by another node meanwhile: look again soon.
            return 0.05
        if len(due) > len(claimed):
            return None if self._in_flight else 0.0
        waiting: list[datetime] = []
        for h in heads:
            if h["id"] in in_flight or h["id"] in {r.id for r in claimed}:
                continue
            if h["state"] == "pending" and h["next_attempt_at"] > now:
                waiting.append(h["next_attempt_at"])
            elif h["state"] == "sending" and h["lease_until"] is not None:
                waiting.append(h["lease_until"])
        if not waiting:
            return None if self._in_flight else self._poll_interval
        return max((min(waiting) - now).total_seconds(), 0.0)

    @staticmethod
    def _is_due(head: RowMapping, now: datetime) -> bool:
        if head["state"] == "pending":
            return bool(head["next_attempt_at"] <= now)
        lease: datetime | None = head["lease_until"]
        return lease is None or lease <= now  # a sending row whose node is gone

    async def _claim(
        self, conn: AsyncConnection, ids: list[int], limit: int, now: datetime
    ) -> list[OutboxRow]:
        """Claim up to `limit` of the due rows `ids`; another node's concurrent claim wins
        cleanly (rows it holds are skipped; a row it changed no longer matches)."""
        c = outbox_table.c
        due_now = or_(
            and_(c.state == "pending", c.next_attempt_at <= now),
            and_(c.state == "sending", or_(c.lease_until.is_(None), c.lease_until <= now)),
        )
        query = (
            select(outbox_table)
            .where(c.id.in_(ids), due_now)
            .order_by(c.next_attempt_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        candidates = (await conn.execute(query)).mappings().all()
        lease_until = now + timedelta(seconds=self._lease)
        claimed: list[OutboxRow] = []
        for candidate in candidates:
            result = await conn.execute(
                update(outbox_table)
                .where(c.id == candidate["id"], c.state == candidate["state"],
                       c.attempts == candidate["attempts"])
                .values(state="sending", attempts=c.attempts + 1, claimed_by=self.node_id,
                        lease_until=lease_until)
            )
            if result.rowcount == 1:
                if candidate["state"] == "sending":
                    log.warning("outbox: callback %d (key %s): the lease of %s ran out; "
                                "sending it again", candidate["id"], candidate["key"],
                                candidate["claimed_by"] or "a stopped node")
                claimed.append(_row(candidate))
        return claimed

    @staticmethod
    async def _head_rows(conn: AsyncConnection) -> list[RowMapping]:
        """For every key with open rows, its oldest open row (the only one that may be sent)."""
        firsts = (
            select(outbox_table.c.key, func.min(outbox_table.c.id).label("first_id"))
            .where(outbox_table.c.state.in_(OPEN_STATES))
            .group_by(outbox_table.c.key)
            .subquery()
        )
        query = (
            select(outbox_table)
            .join(firsts, outbox_table.c.id == firsts.c.first_id)
            .order_by(outbox_table.c.next_attempt_at, outbox_table.c.id)
        )
        return list((await conn.execute(query)).mappings().all())

    @staticmethod
    async def _count_open(conn: AsyncConnection) -> int:
        query = select(func.count()).select_from(outbox_table).where(
            outbox_table.c.state.in_(OPEN_STATES)
        )
        return int((await conn.execute(query)).scalar_one())

    async def _deliver(self, row: OutboxRow) -> None:
        attempt = row.attempts + 1
        try:
            overrides: ConnectionOverrides | None = None
            try:
                parsed = parse_fragment(split_fragment(row.url)[1])
            except OverrideError as exc:
                outcome = _Outcome(False, True, exc.code, str(exc))
            else:
                overrides = parsed
                for warning in parsed.warnings:
                    log.warning("outbox: callback %d to %s: connection override: %s",
                                row.id, split_fragment(row.url)[0], warning)
                outcome = await self._attempt(row, parsed)
            await self._record(row, attempt, outcome, overrides)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox: recording the result of callback %d failed", row.id)
        finally:
            self._in_flight.pop(row.id, None)
            self._wake.set()

    async def _attempt(self, row: OutboxRow, overrides: ConnectionOverrides) -> _Outcome:
        """One attempt, as Twilio makes it: up to ``1 + rc`` requests within ``tt``, retrying
        at once the failures ``rp`` names. Never longer than the claim's lease allows."""
        loop = asyncio.get_running_loop()
        budget = min(overrides.total_timeout, max(self._lease - 5.0, self._lease / 2))
        deadline = loop.time() + budget
        outcome = _Outcome(False, False, _UNEXPECTED_ERROR_CODE, "no request was made")
        for request in range(1, overrides.max_attempts + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining) as timer:
                    await self._client.request(
                        row.url, row.method, row.params,
                        idempotency_token=row.idempotency_token,
                    )
                return _Outcome(delivered=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError) and timer.expired():
                    code = (TOTAL_TIMEOUT_TRIGGERED if overrides.total_timeout_set
                            else CONNECTION_FAILURE)
                    return _Outcome(False, False, code,
                                    f"{code}: no answer within the total time of "
                                    f"{budget * 1000:.0f} ms ({request} request(s))",
                                    Failure.READ)
                if not isinstance(exc, TwilioError):
                    log.exception("outbox: unexpected error delivering row %d", row.id)
                outcome = _outcome_of(exc)
                if outcome.delivered:
                    return outcome
                if outcome.final or not overrides.retries_on(outcome.failure):
                    return outcome
                log.info("outbox: callback %d: request %d failed (%s); retrying at once (rp)",
                         row.id, request, outcome.message)
        return outcome

    def _is_final(self, outcome: _Outcome, overrides: ConnectionOverrides | None) -> bool:
        if outcome.final:
            return True
        if outcome.failure is Failure.HTTP_4XX:
            return overrides is None or not overrides.retries_on(Failure.HTTP_4XX)
        return False

    async def _record(
        self, row: OutboxRow, attempt: int, outcome: _Outcome,
        overrides: ConnectionOverrides | None,
    ) -> None:
        now = self._clock()
        values: dict[str, Any]
        if outcome.delivered:
            values = {"state": "delivered", "delivered_at": now}
            label = "delivered"
        elif self._is_final(outcome, overrides) or attempt >= self._max_attempts:
            values = {"state": "failed", "last_error": outcome.message,
                      "last_error_code": outcome.code}
            label = "failed"
            log.warning(
                "outbox: callback %d (key %s) to %s %s failed after %d attempt(s): %s",
                row.id, row.key, row.method, split_fragment(row.url)[0], attempt,
                outcome.message,
            )
        else:
            delay = self._backoff[min(attempt, len(self._backoff)) - 1]
            values = {
                "state": "pending",
                "last_error": outcome.message,
                "last_error_code": outcome.code,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
            label = "retrying"
            log.info("outbox: callback %d (key %s) attempt %d failed (%s); next in %.0f s",
                     row.id, row.key, attempt, outcome.message, delay)
        values.update(claimed_by=None, lease_until=None)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(outbox_table)
                .where(outbox_table.c.id == row.id, outbox_table.c.state == "sending",
                       outbox_table.c.claimed_by == self.node_id)
                .values(values)
            )
        if result.rowcount == 0:
            log.warning("outbox: callback %d: the claim was lost (lease ran out) before its "
                        "result (%s) was recorded", row.id, label)
        if self._metrics is not None:
            self._metrics.inc("callbacks", label)
