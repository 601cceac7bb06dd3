"""Recovery beside the running service: the startup `recover` and the periodic `sweep`, as the
coroutines the service runs in its `adapter.tasks.TaskSet` (and cancels when it stops). They are
given what they use (store, outbox, config, node id, a way to hang up a channel), never the
service itself."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from adapter.callbacks.outbox import Outbox
from adapter.config import Config
from adapter.db.store import Store
from adapter.pbx.base import HangUp
from adapter.recovery.run import RecoveryReport, recover, sweep

__all__ = ["recover_at_start", "sweep_forever"]

log = logging.getLogger(__name__)


async def recover_at_start(
    store: Store, outbox: Outbox, config: Config, *, node_id: str, started_before: datetime,
    hang_up: HangUp | None = None, close_wait: float = 10.0,
) -> RecoveryReport:
    """`recover`, run in the background (the adapter takes new calls meanwhile): the calls of
    node `node_id` begun before `started_before` (when the service's start began), channels
    still up hung up through `hang_up`. Failures are logged, never raised."""
    try:
        return await recover(store, outbox, config, hang_up=hang_up, node_id=node_id,
                             started_before=started_before, close_wait=close_wait)
    except Exception:
        log.exception("recovery failed; unfinished calls stay as they are until next start")
        return RecoveryReport()


async def sweep_forever(
    store: Store, outbox: Outbox, config: Config, *, node_id: str, every: float = 60.0
) -> None:
    """`sweep` every `every` seconds beside the running service, until cancelled; a failed
    sweep is logged and tried again next time."""
    while True:
        await asyncio.sleep(every)
        try:
            report = await sweep(store, outbox, config, node_id=node_id)
        except Exception:
            log.exception("recovery: sweep failed; trying again in %.0f s", every)
            continue
        if report.completed or report.absent:
            log.warning("recovery: sweep finished %d open recording(s) of finished calls",
                        len(report.completed) + len(report.absent))
