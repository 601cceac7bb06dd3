"""WebhookClient against a real local aiohttp server that records what it receives."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from adapter.callbacks.webhook_client import WebhookClient, split_fragment
from adapter.callbacks.webhook_results import WebhookError

TOKEN = "secret-auth-token"
ACCOUNT = "AC" + "0" * 32
MAX_BODY = 4096
PARAMS = [("CallSid", "CA" + "1" * 32), ("From", "+15551234567"), ("CallerName", "Zoë Ünal")]


@dataclass
class Seen:
    method: str
    url: str  # as a web framework reconstructs it: scheme://host + raw path and query
    headers: dict[str, str]
    form: MultiDictProxy[str]

    def signature_ok(self) -> bool:
        return bool(
            RequestValidator(TOKEN).validate(
                self.url, self.form, self.headers.get("X-Twilio-Signature", "")
            )
        )


@dataclass
class Receiver:
    base: str = ""
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    active: int = 0
    max_active: int = 0


def _app(rx: Receiver, scheme: str) -> web.Application:
    async def record(request: web.Request) -> None:
        form = await request.post() if request.method == "POST" else MultiDictProxy(MultiDict())
        rx.seen.append(
            Seen(
                request.method,
                f"{scheme}://{request.host}{request.raw_path}",
                dict(request.headers),
                MultiDictProxy(MultiDict((k, str(v)) for k, v in form.items())),
            )
        )

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"<Response/>", content_type="text/xml", charset="utf-8")

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=int(request.match_info["code"]))

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        headers = {"Location": request.query["to"]} if "to" in request.query else {}
        return web.Response(status=int(request.match_info["code"]), headers=headers)

    async def loop(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"Location": "/loop"})

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        await rx.release.wait()
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"x" * (MAX_BODY + 1))

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse()  # chunked: no Content-Length to give the size away
        await resp.prepare(request)
        try:
            for _ in range(100_000):  # 1.6 GB unless the client stops reading
                await resp.write(b"y" * 16384)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def gate(request: web.Request) -> web.Response:
        await record(request)
        async with rx.arrived:
            rx.active += 1
            rx.max_active = max(rx.max_active, rx.active)
            rx.arrived.notify_all()
        await rx.release.wait()
        async with rx.arrived:
            rx.active -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/redirect/{code:\\d+}", redirect)
    app.router.add_route("*", "/loop", loop)
    app.router.add_route("*", "/hang", hang)
    app.router.add_route("*", "/big", big)
    app.router.add_route("*", "/endless", endless)
    app.router.add_route("*", "/gate", gate)
    app.router.add_route("*", "/{tail:.*}", ok)
    return app


async def _serve(
    rx: Receiver, scheme: str = "http", ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    runner = web.AppRunner(_app(rx, scheme), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    rx.base = f"{scheme}://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    runner = await _serve(receiver)
    yield receiver
    receiver.release.set()
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(
        account_sid=ACCOUNT, auth_token=TOKEN, max_body=MAX_BODY, read_timeout=5.0
    ) as c:
        yield c


# --- placement and signing -------------------------------------------------------------------


async def test_post_puts_params_in_a_signed_form_body(rx: Receiver, client: WebhookClient) -> None:
    resp = await client.request(rx.base + "/voice?a=1", "POST", PARAMS)
    assert resp.status == 200
    assert resp.body == b"<Response/>"
    assert resp.content_type == "text/xml; charset=utf-8"
    assert resp.url == rx.base + "/voice?a=1"
    (seen,) = rx.seen
    assert seen.method == "POST"
    assert seen.url == rx.base + "/voice?a=1"
    assert list(seen.form.items()) == PARAMS
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["User-Agent"] == "TwilioProxy/1.1"
    assert seen.signature_ok()


async def test_get_appends_params_to_the_existing_query(
    rx: Receiver, client: WebhookClient
) -> None:
    await client.request(rx.base + "/voice?a=1&b=two", "get", PARAMS)
    (seen,) = rx.seen
    assert seen.method == "GET"
    assert not seen.form
    assert seen.url == (
        rx.base + "/voice?a=1&b=two&CallSid=CA" + "1" * 32
        + "&From=%2B15551234567&CallerName=Zo%C3%AB+%C3%9Cnal"
    )
    assert seen.signature_ok()


async def test_signature_is_checked_for_real(rx: Receiver, client: WebhookClient) -> None:
    await client.request(rx.base + "/voice", "POST", PARAMS)
    (seen,) = rx.seen
    tampered = MultiDictProxy(MultiDict([*seen.form.items(), ("Extra", "1")]))
    assert not RequestValidator(TOKEN).validate(
        seen.url, tampered, seen.headers["X-Twilio-Signature"]
    )


async def test_fragment_is_stripped_and_not_signed(rx: Receiver, client: WebhookClient) -> None:
    resp = await client.request(rx.base + "/voice?x=1#ct=1000&rc=3", "POST", PARAMS)
    (seen,) = rx.seen
    assert seen.url == rx.base + "/voice?x=1"
    assert resp.url == rx.base + "/voice?x=1"
    assert seen.signature_ok()


async def test_non_ascii_url_is_percent_encoded_and_signed_as_sent(
    rx: Receiver, client: WebhookClient
) -> None:
    await client.request(rx.base + "/bücher/ä b?q=é", "GET", [])
    (seen,) = rx.seen
    assert seen.url == rx.base + "/b%C3%BCcher/%C3%A4%20b?q=%C3%A9"
    assert seen.signature_ok()


async def test_valid_url_is_sent_byte_for_byte(rx: Receiver, client: WebhookClient) -> None:
    await client.request(rx.base + "/a%2fb?q=%7e&r=a+b", "POST", [])
    (seen,) = rx.seen
    assert seen.url == rx.base + "/a%2fb?q=%7e&r=a+b"
    assert seen.signature_ok()


async def test_idempotency_token_header(rx: Receiver, client: WebhookClient) -> None:
    await client.request(rx.base + "/cb", "POST", PARAMS, idempotency_token="tok-1")
    await client.request(rx.base + "/cb", "POST", PARAMS)
    assert rx.seen[0].headers["I-Twilio-Idempotency-Token"] == "tok-1"
    assert "I-Twilio-Idempotency-Token" not in rx.seen[1].headers


def test_split_fragment() -> None:
    assert split_fragment("https://h/x?y=1#ct=10&rt=20") == ("https://h/x?y=1", "ct=10&rt=20")
    assert split_fragment("https://h/x") == ("https://h/x", "")


# --- redirects -------------------------------------------------------------------------------


async def test_307_repeats_the_post_signed_for_the_new_url(
    rx: Receiver, client: WebhookClient
) -> None:
    resp = await client.request(rx.base + "/redirect/307?to=/final", "POST", PARAMS)
    assert resp.url == rx.base + "/final"
    first, second = rx.seen
    assert first.signature_ok()
    assert (second.method, second.url) == ("POST", rx.base + "/final")
    assert list(second.form.items()) == PARAMS
    assert second.signature_ok()


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_301_302_303_continue_a_post_as_a_signed_get(
    rx: Receiver, client: WebhookClient, code: int
) -> None:
    await client.request(rx.base + f"/redirect/{code}?to=final%3Fk%3Dv", "POST", PARAMS)
    second = rx.seen[1]
    assert (second.method, second.url) == ("GET", rx.base + "/redirect/final?k=v")
    assert not second.form
    assert second.signature_ok()


async def test_too_many_redirects_is_11215(rx: Receiver) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, max_redirects=2) as c:
        with pytest.raises(WebhookError) as info:
            await c.request(rx.base + "/loop", "GET", [])
    assert info.value.code == 11215
    assert len(rx.seen) == 3


@pytest.mark.parametrize("path", ["/redirect/308?to=/final", "/redirect/302", "/redirect/300"])
async def test_invalid_redirect_is_11216(rx: Receiver, client: WebhookClient, path: str) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(rx.base + path, "POST", PARAMS)
    assert info.value.code == 11216
    assert len(rx.seen) == 1


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_non_2xx_is_11200_with_status(
    rx: Receiver, client: WebhookClient, status: int
) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(rx.base + f"/status/{status}", "POST", PARAMS)
    assert (info.value.code, info.value.status) == (11200, status)


async def test_body_larger_than_max_is_11750(rx: Receiver, client: WebhookClient) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(rx.base + "/big", "POST", PARAMS)
    assert (info.value.code, info.value.status) == (11750, 200)


async def test_endless_body_is_cut_off_with_11750(rx: Receiver, client: WebhookClient) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(rx.base + "/endless", "GET", [])
    assert info.value.code == 11750


async def test_body_of_exactly_max_is_accepted(rx: Receiver) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, max_body=MAX_BODY + 1) as c:
        resp = await c.request(rx.base + "/big", "GET", [])
    assert len(resp.body) == MAX_BODY + 1


async def test_response_timeout_is_11205(rx: Receiver) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, read_timeout=0.3) as c:
        with pytest.raises(WebhookError) as info:
            await c.request(rx.base + "/hang", "POST", PARAMS)
    assert info.value.code == 11205
    assert len(rx.seen) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_11205(client: WebhookClient) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(f"http://127.0.0.1:{_closed_port()}/voice", "POST", PARAMS)
    assert info.value.code == 11205
    assert info.value.status is None


@pytest.mark.parametrize("host", ["no-such-host.invalid", "bücher.invalid"])
async def test_unknown_host_is_11210(client: WebhookClient, host: str) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(f"http://{host}/voice", "GET", [])
    assert info.value.code == 11210


@pytest.mark.parametrize("url", ["ftp://example.com/x", "/relative/path", "https:///nohost"])
async def test_not_an_http_url_is_11100(client: WebhookClient, url: str) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(url, "POST", PARAMS)
    assert info.value.code == 11100


async def test_garbage_answer_is_11206(client: WebhookClient) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HELLO THERE\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(WebhookError) as info:
            await client.request(f"http://127.0.0.1:{port}/", "GET", [])
    assert info.value.code == 11206


async def test_request_before_start_is_refused() -> None:
    c = WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN)
    with pytest.raises(RuntimeError):
        await c.request("http://127.0.0.1:1/", "GET", [])


async def test_in_flight_requests_are_bounded(rx: Receiver) -> None:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, max_in_flight=2) as c:
        tasks = [asyncio.create_task(c.request(rx.base + "/gate", "GET", [])) for _ in range(6)]
        async with rx.arrived:
            await rx.arrived.wait_for(lambda: rx.active >= 2)
        rx.release.set()
        results = await asyncio.gather(*tasks)
    assert [r.status for r in results] == [200] * 6
    assert len(rx.seen) == 6
    assert rx.max_active == 2


# --- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    key: Path
    cert: Path
    expired: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "index.txt").write_text("")
    (d / "serial.txt").write_text("01\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\nnew_certs_dir = .\n"
        "serial = serial.txt\ndefault_md = sha256\npolicy = any\n[any]\n"
        "commonName = supplied\n[ext]\nsubjectAltName = DNS:localhost\n"
    )
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
             "-in", "srv.csr", "-out", "expired.pem", "-startdate", "20200101000000Z",
             "-enddate", "20200102000000Z", "-extensions", "ext", cwd=d)
    yield Certs(d / "ca.pem", d / "srv.key", d / "srv.pem", d / "expired.pem")


async def _tls_receiver(cert: Path, key: Path) -> tuple[Receiver, web.AppRunner]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    receiver = Receiver()
    runner = await _serve(receiver, "https", ctx)
    return receiver, runner


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def _tls_request(
    certs: Certs, *, cert: Path | None = None, host: str = "localhost",
    trust: bool = True,
) -> tuple[Receiver, Any]:
    receiver, runner = await _tls_receiver(cert or certs.cert, certs.key)
    port = receiver.base.rsplit(":", 1)[1]
    ctx = _trusting(certs.ca) if trust else None
    try:
        async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, ssl_context=ctx) as c:
            try:
                return receiver, await c.request(f"https://{host}:{port}/voice", "POST", PARAMS)
            except WebhookError as exc:
                return receiver, exc
    finally:
        await runner.cleanup()


async def test_https_with_trusted_certificate(certs: Certs) -> None:
    receiver, outcome = await _tls_request(certs)
    assert outcome.status == 200
    (seen,) = receiver.seen
    assert seen.url.startswith("https://localhost:")
    assert seen.signature_ok()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"trust": False}, 11237),  # unknown CA
        ({"host": "127.0.0.1"}, 11235),  # certificate is for localhost only
        ({"expired": True}, 11236),
    ],
)
async def test_certificate_problems(certs: Certs, kwargs: dict[str, Any], code: int) -> None:
    if kwargs.pop("expired", False):
        kwargs["cert"] = certs.expired
    receiver, outcome = await _tls_request(certs, **kwargs)
    assert isinstance(outcome, WebhookError)
    assert outcome.code == code
    assert receiver.seen == []


async def test_https_to_a_plain_http_server_is_11220(rx: Receiver, client: WebhookClient) -> None:
    with pytest.raises(WebhookError) as info:
        await client.request(rx.base.replace("http:", "https:") + "/voice", "GET", [])
    assert info.value.code == 11220
