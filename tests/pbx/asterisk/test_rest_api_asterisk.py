"""The Calls REST API's outbound calls (``POST /Calls.json``) on a real Asterisk, what only the
Asterisk suite checks: a busy callee (tests/labs/asterisk_lab.py) and a number that is not one,
driven by the official `twilio` client against a running adapter.

What behaves the same on both PBXs (an outbound call with its recording, one that rings and is
canceled; recordings on a live call: create, pause, resume, stop, Twilio.CURRENT, list, fetch,
delete; the call resource: fetch, redirect, end; the errors) is in
tests/interpreter/test_rest_api.py, parametrised by PBX."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twiml_app import TwimlApp

from adapter.service import Adapter

pytestmark = pytest.mark.asterisk
T = TypeVar("T")


def sdk(adapter: Adapter, token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, token)
    client.api.base_url = adapter.config.http.public_base_url
    return client


async def off_loop(call: Callable[[], T]) -> T:
    """The SDK is synchronous; the adapter runs on this loop: call it from a thread."""
    return await asyncio.to_thread(call)


async def test_outbound_call_busy(adapter: Adapter, app: TwimlApp) -> None:
    from asterisk_lab import CALLEE_BUSY

    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=CALLEE_BUSY, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>",
        status_callback=app.url("/status")))
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    (final,) = app.received("/status")
    assert final.params["CallStatus"] == "busy"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "busy"
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls.create(to="not a number", from_="+1555",
                                                   url=app.url("/x")))
    assert info.value.code == 21211
