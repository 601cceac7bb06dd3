"""The outbox's worker: one node's loop that claims due rows and delivers them.

It starts the due head row of each idle key (at most `max_parallel` at a time; a round claims
up to twice that, the rest waiting claimed for the next free slot: `ready_rows`), makes each
attempt as Twilio would (up to ``1 + rc`` requests within ``tt``, the failures ``rp`` names
retried at once; never longer than the claim's lease), and writes the result: delivered,
failed for good (with Twilio's code, and a WARNING), or due again after the `RetryPolicy`'s
delay. A round is one transaction: the results of the attempts that ended (`settling`), the
claimed rows given back untried (they waited too long), then the claims that fill their slots
(and the ready rows they emptied). Between rounds it sleeps until an attempt ends, a row falls
due, a foreign lease runs out, a row is queued (`notify`) or `poll_interval` passes (rows other
nodes queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks import lease
from adapter.callbacks.connection_overrides import (
    TOTAL_TIMEOUT_TRIGGERED,
    ConnectionOverrides,
    Failure,
    OverrideError,
    parse_fragment,
)
from adapter.callbacks.ready_rows import ReadyRows
from adapter.callbacks.retry import UNEXPECTED_ERROR_CODE, Outcome, RetryPolicy, outcome_of
from adapter.callbacks.rows import OutboxRow
from adapter.callbacks.settling import ResultQueue
from adapter.callbacks.webhook_client import WebhookClient, split_fragment
from adapter.callbacks.webhook_results import CONNECTION_FAILURE
from adapter.db.driver_steps import Steps
from adapter.errors import TwilioError
from adapter.metrics import Metrics
from adapter.tasks import TaskSet

__all__ = ["OutboxWorker", "WorkerSettings"]

_Round = tuple[list[bool], datetime, float, list[OutboxRow], "lease.Outlook | None"]
"""What a round's transaction returns: its results' fates, the claim's time (and loop time),
the rows claimed, the outlook if read."""

READY_WAIT_SHARE = 0.25  # of the lease: how long a claimed row may wait for a slot

log = logging.getLogger(__name__)

OPEN_COUNT_INTERVAL = 1.0  # seconds between counts of a backlog's open rows (a gauge)
SETTLE_RETRY_S = 0.05  # first pause before a failed result write is tried again


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How one node's worker delivers: as `node_id`, at most `max_parallel` rows at a time,
    each claimed for `lease` seconds, tried again as `policy` says; an idle worker looks for
    rows other nodes queued every `poll_interval` seconds. `clock` is the time of claims."""

    node_id: str
    policy: RetryPolicy
    max_parallel: int
    lease: float
    poll_interval: float
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if self.lease < 1:
            raise ValueError("lease must be at least 1 second")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")


class OutboxWorker:
    """The delivery loop of one node (see the module docstring). `Outbox` owns it."""

    def __init__(self, engine: AsyncEngine, client: WebhookClient, settings: WorkerSettings,
                 metrics: Metrics | None) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings
        self._policy = settings.policy
        self._clock = settings.clock
        self._node_id = settings.node_id
        self._lease = settings.lease
        self._metrics = metrics
        self.open_rows = 0  # pending or sending, as of the last count
        self._counted_at: float | None = None  # loop time of that count
        self._retry_at: datetime | None = None  # the soonest retry this node scheduled
        self._wake = asyncio.Event()
        self._results = ResultQueue(self._wake.set)  # written by the next round
        self._idle = asyncio.Event()
        self._generation = 0  # bumped by every `notify`; guards `_idle` against a stale check
        # The loop and every delivery run in `_tasks`; `_in_flight` holds the ids of the rows
        # being delivered (a set, not a map to their tasks: `_tasks` keeps and cancels those).
        self._tasks = TaskSet("outbox")
        self._in_flight: set[int] = set()  # (claimed ahead and waiting in `_ready` included)
        self._ready = ReadyRows(max_wait=settings.lease * READY_WAIT_SHARE)
        self._sending = 0  # attempts making requests: at most max_parallel
        self._loop: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def notify(self) -> None:
        """A row was queued: look for due rows now, and do not report idle before."""
        self._generation += 1
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the loop (once)."""
        if self._loop is not None:
            return
        self._idle.clear()
        self._wake.set()
        self._loop = self._tasks.spawn(self._run(), "worker")

    async def stop(self) -> None:
        """Stop the loop; the results of attempts that ended are written, rows still in
        flight are abandoned and given back (``pending``)."""
        if self._loop is None:
            return
        self._loop = None
        in_flight = set(self._in_flight)  # (each delivery's end takes its row out)
        await self._tasks.cancel_all()
        ended = self._results.take()  # (a round cut off here wrote its own, or nothing)
        if ended:
            await lease.settle_many(self._engine, [(r, v) for r, v, _f in ended], self._node_id)
        untried = self._ready.drain()
        if untried:
            await lease.run_steps(self._engine,
                                  lease.give_back_steps(self._engine, untried, self._node_id))
        abandoned = in_flight.difference(r for r, _v, _f in ended).difference(untried)
        self._in_flight.clear()
        if abandoned:
            await lease.release(self._engine, list(abandoned), self._node_id)

    async def wait_idle(self, timeout: float) -> None:  # noqa: ASYNC109 - the public API
        """Until no row is pending or sending; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

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
            poll = self._settings.poll_interval
            wait = poll if delay is None else min(delay, poll)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _dispatch_due(self) -> float | None:
        """Claim and start the due head rows, as many as may start.

        Returns seconds until something may change (a row falls due, a lease runs out), or
        None when that is not known here: nothing is open anywhere (idle), or rows are in
        flight (their ends wake the loop: `_deliver`; rows queued here: `notify`; rows other
        nodes queued: `poll_interval`).
        """
        results = self._results.take()
        loop = asyncio.get_running_loop()
        stale = self._ready.take_stale(loop.time())
        in_flight = set(self._in_flight)  # (rows whose results this round writes included)
        # Claims for the slots and as many ready behind them; a row whose attempt ended holds
        # neither (its result is written by this round or the next).
        free = 2 * self._settings.max_parallel - self._sending - len(self._ready)
        count_due = self._count_due()

        def round_steps() -> Steps[_Round]:
            # Runs where the database is (on SQLite, in its thread: no loop here). First the
            # results of the attempts that ended, freeing their slots; then the claims. The
            # claim's time is read once the round holds the database, not before: a round
            # that waited (for a connection) must not date its lease back.
            written = yield from lease.settle_steps(
                self._engine, [(row_id, values) for row_id, values, _f in results],
                self._node_id)
            if stale:
                yield from lease.give_back_steps(self._engine, stale, self._node_id)
            now = self._clock()
            claimed_at = loop.time()
            claimed: list[OutboxRow] = []
            if free > 0:
                claimed = yield from lease.claim(self._engine, free, now, node_id=self._node_id,
                                                 lease=self._lease, busy=in_flight)
            # What is left only matters to a round that found nothing to start and has
            # nothing in flight (the idle check, the next due time); under load it is read
            # at most every OPEN_COUNT_INTERVAL s, for the ``callbacks_open`` gauge.
            outlook = None
            if (not claimed and not in_flight) or count_due:
                outlook = yield from lease.outlook(self._engine, now)
            return written, now, claimed_at, claimed, outlook

        try:
            written, now, claimed_at, claimed, outlook = await lease.run_steps(
                self._engine, round_steps())
        except BaseException as exc:
            ResultQueue.failed(results, exc)
            self._in_flight.difference_update(stale)  # given back once their lease runs out
            raise
        ResultQueue.written(results, written)
        self._in_flight.difference_update(stale)
        if outlook is not None:
            self.open_rows = outlook.open_rows
        self._in_flight.update(row.id for row in claimed)
        self._ready.add(claimed, claimed_at)
        self._fill_slots()
        if self._ready.has_stale:
            return 0.0  # give them back now
        if self._retry_at is not None and self._retry_at <= now:
            self._retry_at = None  # due: claimed by this round, or once a row in flight ends
        if claimed and len(claimed) == free:
            return None  # more may be due than could start: the first end wakes the loop
        if outlook is not None and outlook.open_rows == 0 and not self._in_flight:
            return None
        next_change = None if outlook is None else outlook.next_change
        times = [t for t in (self._retry_at, next_change) if t is not None]
        if times:
            return max((min(times) - now).total_seconds(), 0.0)
        return None if self._in_flight else self._settings.poll_interval

    def _count_due(self) -> bool:
        """Whether a busy round reads the outlook (the ``callbacks_open`` gauge): at most
        every `OPEN_COUNT_INTERVAL` s (a count per round scanned the whole backlog per
        delivery)."""
        now = asyncio.get_running_loop().time()
        if self._counted_at is None or now - self._counted_at >= OPEN_COUNT_INTERVAL:
            self._counted_at = now
            return True
        return False

    def _fill_slots(self) -> None:
        """Start ready rows while a slot is free (none once the worker stops)."""
        if self._loop is None:
            return
        now = asyncio.get_running_loop().time()
        while self._sending < self._settings.max_parallel:
            ready = self._ready.next(now)
            if ready is None:
                break
            self._sending += 1
            self._tasks.spawn(self._deliver(*ready), str(ready[0].id))
        if self._ready.has_stale:
            self._wake.set()  # the next round gives them back

    async def _deliver(self, row: OutboxRow, claimed_at: float) -> None:
        """Make an attempt of `row`, claimed at loop time `claimed_at`, and record it; its
        slot is free for the next ready row as soon as the attempt has ended."""
        attempt = row.attempts + 1
        lease_end = claimed_at + self._lease
        try:
            overrides: ConnectionOverrides | None = None
            try:
                parsed = parse_fragment(split_fragment(row.url)[1])
            except OverrideError as exc:
                outcome = Outcome(False, True, exc.code, str(exc))
            else:
                overrides = parsed
                for warning in parsed.warnings:
                    log.warning("outbox: callback %d to %s: connection override: %s",
                                row.id, split_fragment(row.url)[0], warning)
                outcome = await self._attempt(row, parsed, claimed_at)
            finally:
                self._sending -= 1
                self._fill_slots()
            await self._record(row, attempt, outcome, overrides, lease_end)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox: recording the result of callback %d failed", row.id)
        finally:
            self._in_flight.discard(row.id)
            self._wake.set()

    async def _attempt(self, row: OutboxRow, overrides: ConnectionOverrides,
                       claimed_at: float) -> Outcome:
        """One attempt, as Twilio makes it: up to ``1 + rc`` requests within ``tt``, retrying
        at once the failures ``rp`` names. It ends a margin before the claim's lease ends,
        counted from the claim (not from the attempt's start, which a loaded loop may
        delay), so the result can be written while the claim still holds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        lease_budget = max(self._lease - 5.0, self._lease / 2)
        deadline = min(started + overrides.total_timeout, claimed_at + lease_budget)
        budget = max(deadline - started, 0.0)
        outcome = Outcome(False, False, UNEXPECTED_ERROR_CODE, "no request was made")
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
                return Outcome(delivered=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError) and timer.expired():
                    code = (TOTAL_TIMEOUT_TRIGGERED if overrides.total_timeout_set
                            else CONNECTION_FAILURE)
                    return Outcome(False, False, code,
                                   f"{code}: no answer within the total time of "
                                   f"{budget * 1000:.0f} ms ({request} request(s))",
                                   Failure.READ)
                if not isinstance(exc, TwilioError):
                    log.exception("outbox: unexpected error delivering row %d", row.id)
                outcome = outcome_of(exc)
                if outcome.delivered:
                    return outcome
                if outcome.final or not overrides.retries_on(outcome.failure):
                    return outcome
                log.info("outbox: callback %d: request %d failed (%s); retrying at once (rp)",
                         row.id, request, outcome.message)
        return outcome

    async def _record(
        self, row: OutboxRow, attempt: int, outcome: Outcome,
        overrides: ConnectionOverrides | None, lease_end: float,
    ) -> None:
        now = self._clock()
        values: dict[str, Any]
        if outcome.delivered:
            values = {"state": "delivered", "delivered_at": now}
            label = "delivered"
        elif self._policy.gives_up(outcome, overrides, attempt):
            values = {"state": "failed", "last_error": outcome.message,
                      "last_error_code": outcome.code}
            label = "failed"
            log.warning(
                "outbox: callback %d (key %s) to %s %s failed after %d attempt(s): %s",
                row.id, row.key, row.method, split_fragment(row.url)[0], attempt,
                outcome.message,
            )
        else:
            delay = self._policy.delay(attempt)
            retry_at = now + timedelta(seconds=delay)
            values = {
                "state": "pending",
                "last_error": outcome.message,
                "last_error_code": outcome.code,
                "next_attempt_at": retry_at,
            }
            if self._retry_at is None or retry_at < self._retry_at:
                self._retry_at = retry_at
            label = "retrying"
            log.info("outbox: callback %d (key %s) attempt %d failed (%s); next in %.0f s",
                     row.id, row.key, attempt, outcome.message, delay)
        if not await self._settle(row, values, lease_end):
            log.warning("outbox: callback %d: the claim was lost (lease ran out) before its "
                        "result (%s) was recorded", row.id, label)
        if self._metrics is not None:
            self._metrics.inc("callbacks", label)
            if label != "retrying":  # how many attempts it took to reach its outcome
                self._metrics.callback_attempts.labels(outcome=label).observe(attempt)

    async def _settle(self, row: OutboxRow, values: dict[str, Any], lease_end: float) -> bool:
        """Write `row`'s result; a write that fails (the database briefly unavailable) is tried
        again while the claim holds (loop time `lease_end`): a result not written means the
        callback is sent again once the lease has run out. False when the claim was lost."""
        loop = asyncio.get_running_loop()
        pause = SETTLE_RETRY_S
        while True:
            try:
                return await self._results.settle(row.id, values)
            except asyncio.CancelledError:
                raise
            except Exception:
                if loop.time() + pause >= lease_end:
                    raise
                log.warning("outbox: writing the result of callback %d failed; trying again",
                            row.id, exc_info=True)
            await asyncio.sleep(pause)  # back-off before writing again, not a synchronisation
            pause = min(pause * 2, 1.0)
