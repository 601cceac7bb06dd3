"""Durable status callbacks: nothing is lost across a restart, nothing is sent twice by two nodes.

`Outbox.enqueue` commits the callback to the ``outbox`` table (in the Store's database) before
returning; a background worker (`adapter.callbacks.worker`) delivers it through the
WebhookClient. The outbox's parts: `events` (event ids), `rows` (the rows, queueing and reading
them), `lease` (claims), `retry` (the retry policy), `worker` (the delivery loop).

Delivery rules:

* In order per key (e.g. the RecordingSid): a key's next row is not sent before the previous one
  is delivered or has finally failed. Different keys are delivered in parallel, at most
  `max_parallel` at a time per node.
* Claims with a lease (`lease`): a worker claims a row for its node before the request, as a
  compare-and-set (with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several adapter nodes
  sharing one database never send the same attempt twice; a row whose lease ran out (its node
  died mid-send) is claimed again by any node. An attempt never outlives its claim: it is cut
  off before the lease ends.
* At least once: a node that starts again puts its own ``sending`` rows back to ``pending`` at
  once (SQLite, single node: every ``sending`` row). Every attempt of a row carries the same
  ``I-Twilio-Idempotency-Token`` so the receiver can spot a repeat.
* Twilio's connection overrides in the URL's fragment (``#ct=..&rt=..&tt=..&rc=..&rp=..``,
  see `adapter.callbacks.connection_overrides`) shape each attempt exactly as Twilio would: up
  to ``1 + rc`` requests, the failures ``rp`` names retried at once, all within ``tt``. An
  invalid ``rp`` fails the row with 11243 without a request; running out of an explicit ``tt``
  is 11203.
* Then the outbox's own persistence on top (Twilio would give up here; `retry`): an attempt
  that failed with something that can heal is tried again after a back-off, up to
  `max_attempts` attempts (by default 30 attempts over about 19 hours); a 4xx answer (unless
  ``rp`` asks for 4xx retries) and errors that cannot heal are final. A row that finally fails
  is ``failed`` with its last error and Twilio's code (11200/11205 family), and a WARNING is
  logged.
* Once per event: a callback queued with an ``event`` id (e.g. ``RE…:completed``) is queued at
  most once, whoever queues it (the call's session, startup recovery, a sweep, another node):
  the id has a unique index, so a second `enqueue` of it is a no-op that returns None. This is
  what keeps a recovery racing a sweep, or two recoveries, from reporting a recording twice.

SQLite has a single writer and no row locks: one adapter node per SQLite database (the claims
are compare-and-set there too, but a starting node resets every ``sending`` row).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from adapter.callbacks import lease, rows
from adapter.callbacks.queueing import GroupQueue
from adapter.callbacks.retry import DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, RetryPolicy
from adapter.callbacks.rows import OPEN_STATES, OutboxRow, list_outbox_rows
from adapter.callbacks.webhook_client import WebhookClient
from adapter.callbacks.worker import OutboxWorker, WorkerSettings
from adapter.db.store import Store, utcnow
from adapter.metrics import Metrics

__all__ = ["Outbox", "default_node_id"]

log = logging.getLogger(__name__)


def default_node_id() -> str:
    """A node id unique to this process: host name, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        settings = WorkerSettings(
            node_id=node_id or default_node_id(), policy=RetryPolicy.of(max_attempts, backoff),
            max_parallel=max_parallel, lease=lease, poll_interval=poll_interval, clock=clock)
        self._engine = store.engine
        self._clock = clock
        self.node_id = settings.node_id
        self._worker = OutboxWorker(self._engine, client, settings, metrics)
        self._queue = GroupQueue(self._engine)
        if metrics is not None:
            metrics.gauge("callbacks_open", lambda: float(self._worker.open_rows))

    @property
    def _single_node(self) -> bool:
        return self._engine.dialect.name == "sqlite"

    # -- producer side ------------------------------------------------------------------------

    async def enqueue(
        self, key: str, url: str, method: str, params: Sequence[tuple[str, str]], *,
        event: str | None = None,
    ) -> int | None:
        """Queue a callback; it is committed when this returns (with the others queued
        meanwhile: `queueing`). Returns the row id, or None when a callback with the same
        `event` id was queued before (nothing is queued)."""
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"unsupported callback method {method!r}")
        try:
            row_id = await self._queue.insert(rows.new_row(key, url, method, params,
                                                           event=event, now=self._clock()))
        except IntegrityError:
            if event is None or not await rows.event_queued(self._engine, event):
                raise
            log.info("outbox: %s was queued before; not queued again", event)
            return None
        self._worker.notify()
        return row_id

    # -- what is queued -----------------------------------------------------------------------

    async def pending(self) -> list[OutboxRow]:
        """Rows not yet delivered nor failed (``pending`` or ``sending``), oldest first."""
        return await list_outbox_rows(self._engine, OPEN_STATES)

    async def failed(self) -> list[OutboxRow]:
        """Rows that exhausted their attempts or met a final error, oldest first."""
        return await list_outbox_rows(self._engine, ("failed",))

    async def queued_recording_statuses(self, recording_sid: str) -> set[str]:
        """The ``RecordingStatus`` values ever queued for recording `recording_sid` (any
        state; rows of older releases without an event id included)."""
        return await rows.queued_recording_statuses(self._engine, recording_sid)

    async def call_status_events_queued(self, call_sid: str) -> int:
        """How many status callbacks of call `call_sid` were ever queued (any state)."""
        return await rows.call_status_events_queued(self._engine, call_sid)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker. This node's ``sending`` rows (SQLite: all of them) are sent again;
        other nodes' rows only once their lease has run out."""
        if self._worker.running:
            return
        recovered = await lease.take_back_interrupted(self._engine, self.node_id,
                                                      single_node=self._single_node)
        if recovered:
            log.info("outbox: %d interrupted callback(s) will be sent again", recovered)
        self._worker.start()

    async def stop(self) -> None:
        """Stop the worker; callbacks in flight are abandoned and sent again later."""
        await self._worker.stop()

    async def wait_idle(self, timeout: float) -> None:  # noqa: ASYNC109 - the public API
        """Wait until no row is pending or sending; TimeoutError after `timeout` seconds.

        Only a started Outbox can become idle (RuntimeError otherwise)."""
        if not self._worker.running:
            raise RuntimeError("Outbox.start() has not been called")
        await self._worker.wait_idle(timeout)
