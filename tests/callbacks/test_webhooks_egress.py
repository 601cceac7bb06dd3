"""SSRF: which addresses webhooks may reach (adapter/callbacks/egress.py), through the real
WebhookClient against a local server that must see no request when the target is refused."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from adapter.callbacks.egress import EgressPolicy, TargetRefused, networks
from adapter.callbacks.webhook_client import WebhookClient
from adapter.callbacks.webhook_results import WebhookError

ACCOUNT = "AC" + "0" * 32
TOKEN = "secret-auth-token"
STRICT = EgressPolicy(allow=())  # public addresses only: no loopback, no private ranges

# --- the policy ----------------------------------------------------------------------------------

ALWAYS_REFUSED = [
    "169.254.169.254",  # AWS/GCP/Azure/OCI metadata
    "169.254.0.1",
    "::ffff:169.254.169.254",  # the same, IPv4-mapped
    "64:ff9b::a9fe:a9fe",  # the same through NAT64
    "2002:a9fe:a9fe::1",  # the same through 6to4
    "::a9fe:a9fe",  # the same, IPv4-compatible
    "fd00:ec2::254",  # AWS metadata over IPv6, inside the allowed fc00::/7
    "100.100.100.200",  # Alibaba metadata
    "fe80::1",
    "fe80::1%2",
    "224.0.0.251",
    "239.255.255.250",
    "ff02::1",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "::",
]
DEFAULT_ALLOWED = [
    "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "10.1.2.3", "172.16.5.4",
    "172.31.255.254", "192.168.1.20", "fd12:3456::1", "8.8.8.8", "2001:4860:4860::8888",
]
NEVER_PUBLIC = ["100.64.0.1", "192.0.2.10", "198.18.0.1", "240.0.0.1", "2001:db8::1"]


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_link_local_metadata_multicast_and_zero_are_always_refused(address: str) -> None:
    assert EgressPolicy().refusal(ip_address(address)) is not None
    everything = EgressPolicy(allow=networks("0.0.0.0/0", "::/0"))
    assert everything.refusal(ip_address(address)) is not None  # nothing can allow them


@pytest.mark.parametrize("address", DEFAULT_ALLOWED)
def test_default_allows_public_loopback_and_private(address: str) -> None:
    assert EgressPolicy().refusal(ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.20", "fd12::1"])
def test_strict_policy_refuses_loopback_and_private(address: str) -> None:
    reason = STRICT.refusal(ip_address(address))
    assert reason is not None and "webhooks.allow_networks" in reason
    assert STRICT.refusal(ip_address("8.8.8.8")) is None


@pytest.mark.parametrize("address", NEVER_PUBLIC)
def test_special_ranges_need_an_explicit_allow(address: str) -> None:
    assert EgressPolicy().refusal(ip_address(address)) is not None
    assert EgressPolicy(allow=networks("100.64.0.0/10", "192.0.2.0/24", "198.18.0.0/15",
                                       "240.0.0.0/4", "2001:db8::/32")
                        ).refusal(ip_address(address)) is None


def test_extra_deny_wins_over_allow() -> None:
    policy = EgressPolicy(deny=networks("10.9.0.0/16"))
    assert policy.refusal(ip_address("10.9.1.1")) is not None
    assert policy.refusal(ip_address("10.8.1.1")) is None


@pytest.mark.parametrize("host", ["127.1", "127.0.0.1.", "①②⑦.0.0.1", "::zz", "2130706433"])
def test_host_that_only_looks_like_an_address_is_refused(host: str) -> None:
    with pytest.raises(TargetRefused):
        EgressPolicy().check_host(host)


# --- through WebhookClient -------------------------------------------------------------------


@dataclass
class Server:
    base: str = ""
    port: int = 0
    seen: list[str] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()

    async def any_path(request: web.Request) -> web.Response:
        srv.seen.append(request.path_qs)
        if "to" in request.query:
            return web.Response(status=302, headers={"Location": request.query["to"]})
        return web.Response(body=b"<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = runner.addresses[0][1]
    srv.base = f"http://127.0.0.1:{srv.port}"
    yield srv
    await runner.cleanup()


class FakeDns(AbstractResolver):
    """Answers names from a table, like a DNS server the attacker controls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(hostname=host, host=address, port=port,
                          family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                          proto=0, flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


async def _refused(client: WebhookClient, url: str) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        await client.request(url, "POST", [("CallSid", "CA" + "1" * 32)])
    return info.value


async def test_metadata_address_is_refused_before_connecting() -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN) as client:
        for url in ("http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                    "http://[::ffff:169.254.169.254]/", "http://[fe80::1%25eth0]:80/",
                    "http://0.0.0.0:8080/", "http://127.1/"):
            started = time.monotonic()
            error = await _refused(client, url)
            assert error.code == 11210, url
            assert "refused to contact" in error.message
            # No connection attempt: one to a black-holed address would wait out the 5 s
            # connect timeout; 3 s leaves a loaded machine room.
            assert time.monotonic() - started < 3.0


async def test_loopback_is_refused_unless_allowed(server: Server) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, egress=STRICT) as client:
        for url in (f"{server.base}/voice", f"http://localhost:{server.port}/voice",
                    f"http://[::ffff:127.0.0.1]:{server.port}/voice"):
            error = await _refused(client, url)
            assert error.code == 11210 and "webhooks.allow_networks" in error.message
    assert server.seen == []
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN) as client:
        response = await client.request(f"http://localhost:{server.port}/voice", "GET", [])
    assert response.status == 200 and server.seen == ["/voice"]


async def test_every_resolved_address_is_checked(server: Server) -> None:
    dns = FakeDns({"app.test": ["127.0.0.1", "169.254.169.254"], "ok.test": ["127.0.0.1"]})
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, resolver=dns) as client:
        error = await _refused(client, f"http://app.test:{server.port}/voice")
        assert error.code == 11210
        assert "app.test (it resolves to 169.254.169.254)" in error.message
        assert server.seen == []
        # The guarded answer is the one connected to: ok.test reaches the local server.
        response = await client.request(f"http://ok.test:{server.port}/voice", "GET", [])
    assert response.status == 200 and server.seen == ["/voice"]
    assert dns.asked == ["app.test", "ok.test"]


async def test_redirect_targets_are_checked_again(server: Server) -> None:
    dns = FakeDns({"evil.test": ["10.0.0.5"]})
    policy = EgressPolicy(allow=networks("127.0.0.1/32"))
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, egress=policy,
                             resolver=dns) as client:
        for target in ("http://169.254.169.254/latest/", "http://evil.test/admin",
                       "http://[::1]:1/"):
            error = await _refused(client, f"{server.base}/start?to={target}")
            assert error.code == 11210, target
    assert [path.split("?")[0] for path in server.seen] == ["/start"] * 3
    assert dns.asked == ["evil.test"]
