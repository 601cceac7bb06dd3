"""After the AMI connection comes back: calls whose hang-up happened during the outage.

panoramisk logs in again by itself when the connection drops, but the events Asterisk sent
meanwhile are lost: a caller who hung up during the outage leaves a session waiting forever for
the reply to its AGI command (RECORD FILE, WAIT...). Asterisk greets every login with a
``FullyBooted`` event; on each one after the first, every call the driver holds is checked
(AMI ``Getvar`` on its channel: `ChannelGone` means it is gone) and a gone call is marked
hung up, which fails its pending AGI command with `CallGone` and ends its session.
`watch_reconnects` is called once the driver has started, so every ``FullyBooted`` it sees
is a re-login. Recordings
such a session could not finish are finished by `adapter.recovery.sweep` (`on_reconciled`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from adapter.pbx.asterisk.ami import AmiMessage
from adapter.pbx.asterisk.driver import AsteriskCall, AsteriskDriver
from adapter.pbx.base import ChannelGone, PbxError

__all__ = ["watch_reconnects"]

log = logging.getLogger(__name__)


async def _gone(driver: AsteriskDriver, call: AsteriskCall) -> bool:
    try:
        await driver.ami.action({"Action": "Getvar", "Channel": call.channel,
                                 "Variable": "UNIQUEID"})
    except ChannelGone:
        return True
    except PbxError:
        return False
    return False


def watch_reconnects(
    driver: AsteriskDriver,
    on_reconciled: Callable[[], Awaitable[object]] | None = None,
) -> Callable[[], Awaitable[int]]:
    """Reconcile `driver`'s calls after every AMI re-login from now on: call it once
    `driver.start()` has returned (the first login's ``FullyBooted`` has gone by then).

    Returns the reconcile coroutine function (usable on its own), which answers how many calls
    were found gone."""
    tasks: set[asyncio.Task[int]] = set()

    async def reconcile() -> int:
        # The driver's calls (it has no public accessor for them yet).
        calls = [c for c in list(driver._calls.values()) if not c.hung_up.is_set()]
        gone = [c for c, dead in zip(calls, await asyncio.gather(
            *(_gone(driver, c) for c in calls)), strict=True) if dead]
        for call in gone:
            log.warning("AMI reconnected: channel %s hung up while the connection was down",
                        call.channel)
            call.mark_gone()
        if on_reconciled is not None:
            await on_reconciled()
        return len(gone)

    def on_fully_booted(_event: AmiMessage) -> None:
        log.info("AMI: logged in again; checking %d call(s)", driver.active_calls)
        task = asyncio.get_running_loop().create_task(reconcile(), name="ami-reconcile")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    driver.ami.on("FullyBooted", on_fully_booted)
    return reconcile
