"""`AsteriskCall.interrupt` (the REST redirect of a live call) on a real Asterisk, at the
driver level: the AMI ``Redirect`` through ``[twiml-resume]`` must leave no AGI command of the
old document behind.

The race it guards against (seen once in a full CI run): the session sends its next AGI command
(``EXEC Wait 60`` of a `<Pause>`) just as the REST redirect arrives. Asterisk queues the
command; the Redirect takes the channel out of AsyncAGI before the command starts; the queued
command survives and runs in the AsyncAGI session the channel enters in ``[twiml-resume]``, so
the new TwiML waited a whole minute behind the old `<Pause>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import adapter_config
from asterisk_lab import AsteriskPbx, CallerScript, originate

from adapter.pbx.asterisk import AsteriskDriver
from adapter.pbx.asterisk.settings import AsteriskSettings
from adapter.pbx.base import CallInterrupted, IncomingCall, PathMap

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def calls(asterisk_lab: AsteriskPbx,
                tmp_path: Path) -> AsyncIterator[asyncio.Queue[IncomingCall]]:
    """Calls the driver adopts; each handler stays until the test hangs the call up."""
    ast = adapter_config(asterisk_lab, tmp_path / "data", "http://127.0.0.1:9/unused").asterisk
    assert ast is not None
    driver = AsteriskDriver(AsteriskSettings(
        host=ast.host, port=ast.port, username=ast.username, secret=ast.secret,
        spool=PathMap(local=ast.spool_dir_local, pbx=ast.spool_dir)))
    adopted: asyncio.Queue[IncomingCall] = asyncio.Queue()

    async def on_call(incoming: IncomingCall) -> None:
        await adopted.put(incoming)
        await incoming.control.hung_up.wait()

    await driver.start(on_call)
    try:
        yield adopted
    finally:
        await driver.stop()


# How long the old command has before the redirect: none (still on its way, or queued in
# Asterisk), a little, and long enough to be running (the ordinary case).
@pytest.mark.parametrize("head_start", [0.0, 0.002, 0.01, 0.5])
async def test_a_command_sent_as_the_redirect_starts_does_not_outlive_it(
    calls: asyncio.Queue[IncomingCall], ami: Any, head_start: float,
) -> None:
    await originate(ami, CallerScript.TONE440, "+15557650000", from_number="+15551230010",
                    caller_name="Race", variables={"DURATION_S": "40"})
    incoming = await asyncio.wait_for(calls.get(), 10)
    call = incoming.control
    await call.answer()
    old_pause = asyncio.create_task(call.pause(60))
    await asyncio.sleep(head_start)
    await call.interrupt()
    # The old <Pause> ends now: cut (CallInterrupted), or, on Asterisk, with the ordinary reply of
    # an interrupted Wait; the session looks for the pending redirect either way.
    with contextlib.suppress(CallInterrupted):
        await asyncio.wait_for(old_pause, 5)
    # The new document's first command runs at once, not after the old 60 s <Pause>.
    started = time.monotonic()
    await asyncio.wait_for(call.pause(1), 10)
    assert time.monotonic() - started < 3
    await call.hangup()
