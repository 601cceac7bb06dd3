"""The AMI secret and the auth token never reach a log line or an error message, even with every
logger at DEBUG: an AMI login and a call-like sequence of AGI commands against a fake AMI, a
refused login, an action that cannot be sent, and signed webhooks (answered and refused)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from fake_ami import FakeAmi
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from adapter.callbacks.webhook_client import WebhookClient
from adapter.callbacks.webhook_results import WebhookError
from adapter.pbx.asterisk.ami import AmiClient
from adapter.pbx.asterisk.ami_protocol import FramedAmiProtocol
from adapter.pbx.base import PbxError

AMI_SECRET = "ami-s3cr3t-0f9e8d7c"
WRONG_SECRET = "ami-wr0ng-1a2b3c4d"
AUTH_TOKEN = "auth-t0ken-5e6f7a8b9c0d"
ACCOUNT = "AC" + "0" * 32
CHANNEL = "PJSIP/trunk-0000002a"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("adapter", "panoramisk", "aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(secret=AMI_SECRET)
    await server.start()
    yield server
    await server.close()


def assert_no_secret(text: str) -> None:
    for secret in (AMI_SECRET, WRONG_SECRET, AUTH_TOKEN):
        assert secret not in text


async def test_login_and_a_call_at_debug_never_log_the_secret(
    fake_ami: FakeAmi, debug_logs: pytest.LogCaptureFixture
) -> None:
    client = AmiClient(host="127.0.0.1", port=fake_ami.port, username="adapter",
                       secret=AMI_SECRET, connect_timeout=5)
    await client.connect()
    for command in ("ANSWER", 'STREAM FILE /var/spool/asterisk/twiml/prompts/p1 ""',
                    "EXEC SendDTMF 1w2", "EXEC Dial PJSIP/+15551230000@trunk,30,S(60)",
                    "HANGUP"):
        reply = await client.agi(CHANNEL, command)
        assert reply.code == 200
    await client.close()
    login = fake_ami.actions[0]
    assert login["Action"] == "Login" and login["Secret"] == AMI_SECRET  # it was really sent
    assert len(debug_logs.records) > 5  # DEBUG logging was on and produced lines
    assert_no_secret(debug_logs.text)


async def test_refused_login_logs_and_says_nothing_of_the_secret(
    fake_ami: FakeAmi, debug_logs: pytest.LogCaptureFixture
) -> None:
    client = AmiClient(host="127.0.0.1", port=fake_ami.port, username="adapter",
                       secret=WRONG_SECRET, connect_timeout=1)
    with pytest.raises(PbxError) as info:
        await client.connect()
    await client.close()
    assert fake_ami.actions[0]["Secret"] == WRONG_SECRET
    assert_no_secret(str(info.value) + repr(info.value) + debug_logs.text)


class _BrokenTransport:
    def write(self, data: bytes) -> None:
        raise OSError("socket gone")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("cls", [AMIProtocol, FramedAmiProtocol])
async def test_a_login_that_cannot_be_sent(
    cls: type[Any], debug_logs: pytest.LogCaptureFixture
) -> None:
    """panoramisk logs the whole action ('Fail to send %r'), Secret included, and leaves the
    future pending; ours logs the action's name and fails the future."""
    protocol = cls()
    protocol.connection_made(_BrokenTransport())
    protocol.factory = Manager()
    protocol.log = logging.getLogger("adapter.pbx.asterisk.panoramisk")
    protocol.encoding = "utf8"
    future = protocol.send({"Action": "Login", "Username": "adapter", "Secret": AMI_SECRET})
    if cls is AMIProtocol:
        assert AMI_SECRET in debug_logs.text and not future.done()
        return
    assert_no_secret(debug_logs.text)
    assert "could not send the Login action (OSError)" in debug_logs.text
    with pytest.raises(PbxError):
        future.result()


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    async def voice(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/voice", voice)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/voice"
    await runner.cleanup()


async def test_webhooks_at_debug_never_log_the_auth_token(
    app_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=AUTH_TOKEN) as client:
        response = await client.request(app_url, "POST", [("CallSid", "CA" + "1" * 32)])
        assert response.status == 200
        for url in ("http://169.254.169.254/", app_url.replace("/voice", "/missing")):
            with pytest.raises(WebhookError) as info:
                await client.request(url, "POST", [("CallSid", "CA" + "1" * 32)])
            assert_no_secret(str(info.value) + repr(info.value))
        assert_no_secret(repr(client))
    assert_no_secret(debug_logs.text)
