"""The adapter's AMI session receives only the events it reads, on the real Asterisk 22: the
include filter `AmiClient` sets at its login (`adapter.pbx.asterisk.ami.event_filter`), and
sets again after a re-login, whose new session starts without it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from asterisk_lab import CALLERS_CONTEXT, AmiEventLog, AsteriskPbx
from tcp_proxy import TcpProxy

from adapter.pbx.asterisk.ami import AmiClient, AmiMessage


class _Seeing(AmiClient):
    """An AmiClient that keeps every event it receives, read by a handler or not."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[AmiMessage] = []

    def _dispatch(self, manager: Any, message: AmiMessage) -> None:
        if message.get("Event"):
            self.seen.append(message)
        super()._dispatch(manager, message)


async def _call_hung_up_by_the_harness(ami: Any, events: AmiEventLog) -> str:
    """A Local channel that waits, hung up by an AMI ``Hangup`` (so Asterisk also sends
    HangupRequest, which a filter for ``Hangup`` must not let through); its Uniqueid."""
    uid = f"twiml-test-{uuid.uuid4().hex[:16]}"
    reply = await ami.send_action({
        "Action": "Originate", "Channel": f"Local/silent@{CALLERS_CONTEXT}",
        "Application": "Wait", "Data": "30", "Async": "true", "ChannelId": uid,
        "OtherChannelId": f"{uid}-caller", "Variable": "SILENCE_S=30",
    })
    assert (reply if isinstance(reply, list) else [reply])[-1].get("Response") == "Success"
    channel = (await events.wait_for("Newchannel", lambda e: e.get("Uniqueid") == uid))["Channel"]
    await ami.send_action({"Action": "Hangup", "Channel": channel})
    await events.wait_for("HangupRequest", lambda e: _of(e, uid))
    return uid


def _of(event: AmiMessage, uid: str) -> bool:
    """Whether `event` is of either half of the Local call `uid` (``uid``, ``uid-caller``)."""
    return str(event.get("Uniqueid", "")).startswith(uid)


async def test_only_the_events_read_arrive_after_the_login_and_after_a_re_login(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog
) -> None:
    proxy = TcpProxy((asterisk_lab.ami_host, asterisk_lab.ami_port))
    await proxy.start()
    client = _Seeing(host=proxy.address[0], port=proxy.address[1],
                     username=asterisk_lab.ami_username, secret=asterisk_lab.ami_secret,
                     connect_timeout=10)
    hangups: asyncio.Queue[AmiMessage] = asyncio.Queue()
    logins: asyncio.Queue[AmiMessage] = asyncio.Queue()
    client.on("Hangup", hangups.put_nowait)
    client.on("FullyBooted", logins.put_nowait)
    try:
        await client.connect()
        assert client.events_filtered.is_set()
        for login in ("the first login", "the re-login"):
            client.seen.clear()
            uid = await _call_hung_up_by_the_harness(ami, ami_events)
            async with asyncio.timeout(10):
                while not _of(await hangups.get(), uid):
                    pass
            await ami_events.wait_for("Hangup", lambda e, uid=uid: _of(e, uid))
            harness = {str(e.get("Event")) for e in ami_events.events if _of(e, uid)}
            assert {"Newchannel", "HangupRequest", "Hangup"} <= harness, harness
            assert {str(e.get("Event")) for e in client.seen} == {"Hangup"}, login
            if login == "the first login":
                while not logins.empty():
                    logins.get_nowait()  # the first login's greeting
                proxy.cut()  # panoramisk connects and logs in again, through the proxy
                async with asyncio.timeout(20):
                    await logins.get()
                    assert not client.events_filtered.is_set()  # cleared at the cut
                    await client.events_filtered.wait()
        assert proxy.connections == 2
    finally:
        await client.close()
        await proxy.stop()
