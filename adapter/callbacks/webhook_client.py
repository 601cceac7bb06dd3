"""HTTP client that calls a customer's web app the way Twilio does.

Every request is signed with ``X-Twilio-Signature`` over exactly what goes on the wire, carries
Twilio's ``User-Agent`` and, if given, ``I-Twilio-Idempotency-Token``; failures surface as
`WebhookError` carrying the code Twilio's debugger would show (`adapter.callbacks.webhook_results`
lists them).

Redirects: Twilio follows only 301, 302, 303 and 307 (error 11216 lists them). Twilio does not
document the method used after a redirect; we do what browsers and RFC 9110 clients do: 303
always, and 301/302 of a POST, continue as a GET without the form body; 307 repeats the method
and body. Every hop is signed afresh for the URL it requests.

Timeouts follow Twilio's defaults: `connect_timeout` (5 s) bounds establishing the TCP/TLS
connection, `read_timeout` (15 s) bounds each HTTP exchange as a whole, connection included.

The URL fragment is never sent. Twilio reads its connection overrides (``#ct=..&rt=..``) from
it; `request` already separates it (see `split_fragment`) for that later work.

Cookies are not kept: Twilio keeps cookies per call, which needs a per-call jar (later work);
one jar shared by all calls would leak one call's cookies into another.

Target networks (SSRF): every address a request would connect to, on every hop, must pass the
`EgressPolicy` (adapter/callbacks/egress.py; default: no link-local/metadata, multicast or
``0.0.0.0/8``; loopback and private ranges allowed; configured as ``[webhooks]
allow_networks``). A refused target is 11210, "HTTP bad host name", before any connection is
made: it is Twilio's code for a host its servers may not use (Twilio's own example is a name
defined only in /etc/hosts), and it names the cause at the step where it happens, which 11205
(a connection was tried) and the catch-all 11200 would not.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote, urlencode, urljoin, urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver

from adapter.callbacks.connection_overrides import parse_fragment
from adapter.callbacks.egress import EgressPolicy, GuardedResolver, TargetRefused
from adapter.callbacks.signature import SIGNATURE_HEADER, compute_signature
from adapter.callbacks.webhook_results import (
    BAD_HOST_NAME,
    BODY_TOO_LARGE,
    INVALID_REDIRECT,
    INVALID_URL,
    RETRIEVAL_FAILURE,
    TOO_MANY_REDIRECTS,
    WebhookError,
    WebhookResponse,
    error_for,
)
from adapter.metrics import Metrics

__all__ = [
    "IDEMPOTENCY_HEADER",
    "WebhookClient",
    "split_fragment",
]

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

_FOLLOWED_REDIRECTS = frozenset({301, 302, 303, 307})
# Characters that may stand in a URL as they are; anything else is percent-encoded.
_URL_SAFE = "!#$&'()*+,/:;=?@[]~%-._"
_READ_CHUNK = 16384


def split_fragment(url: str) -> tuple[str, str]:
    """Split `url` into (URL to request, fragment without ``#``); the fragment is never sent.

    The fragment is where Twilio's connection overrides live (``#ct=2000&rc=3``).
    """
    base, _, fragment = url.partition("#")
    return base, fragment


def _wire_url(url: str) -> str:
    """`url` (no fragment) as it goes on the wire: unchanged when it is already a valid URL,
    else with unsafe characters percent-encoded and an internationalised host IDNA-encoded.

    Raises WebhookError(11100) when it is not an absolute http/https URL.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise WebhookError(INVALID_URL, f"invalid URL: {exc}", url=url) from exc
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise WebhookError(
            INVALID_URL, "URL must be absolute and use http or https", url=url
        )
    if not parts.netloc.isascii():
        userinfo, at, hostport = parts.netloc.rpartition("@")
        host, colon, port = hostport.partition(":")
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise WebhookError(INVALID_URL, f"invalid host name: {exc}", url=url) from exc
        url = parts._replace(netloc=f"{userinfo}{at}{ascii_host}{colon}{port}").geturl()
    return quote(url, safe=_URL_SAFE)


def _with_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    """`url` with `params` form-encoded onto its query, keeping the query it already has."""
    if not params:
        return url
    query = urlencode(list(params))
    if "?" not in url:
        return f"{url}?{query}"
    if url.endswith(("?", "&")):
        return url + query
    return f"{url}&{query}"


@dataclass(frozen=True, slots=True)
class _Hop:
    """One HTTP exchange: what is sent, already signed."""

    url: str
    method: str
    body: bytes | None
    signature: str


class WebhookClient:
    """Signed, bounded HTTP calls to a customer's web app; owns one aiohttp.ClientSession."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        user_agent: str = "TwilioProxy/1.1",
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_body: int = 65536,
        max_redirects: int = 5,
        max_in_flight: int = 10,
        ssl_context: ssl.SSLContext | None = None,
        egress: EgressPolicy | None = None,
        resolver: AbstractResolver | None = None,
        metrics: Metrics | None = None,
        kind: str = "twiml",
    ) -> None:
        """`egress`: the networks requests may reach (default `EgressPolicy()`); `resolver`:
        the DNS resolver whose answers it checks (default aiohttp's own); `metrics`: where each
        request's time goes (``webhook_seconds``, labelled `kind`: twiml or callback)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(
            total=read_timeout, sock_connect=connect_timeout
        )
        self._max_body = max_body
        self._max_redirects = max_redirects
        self._max_in_flight = max_in_flight
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._slots = asyncio.Semaphore(max_in_flight)
        self._egress = egress if egress is not None else EgressPolicy()
        self._inner_resolver = resolver
        self._resolver: GuardedResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._metrics = metrics
        self._kind = kind

    async def start(self) -> None:
        if self._session is not None:
            return
        inner = self._inner_resolver or aiohttp.DefaultResolver()
        self._resolver = GuardedResolver(self._egress, inner)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._max_in_flight, ssl=self._ssl, resolver=self._resolver
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout,
            auto_decompress=True,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()

    async def __aenter__(self) -> WebhookClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        url: str,
        method: str,
        params: Sequence[tuple[str, str]],
        *,
        idempotency_token: str | None = None,
    ) -> WebhookResponse:
        """Call `url` like Twilio: GET puts `params` in the query, POST in a form body.

        Returns the 2xx response; raises WebhookError otherwise (see the module docstring).
        """
        started = time.monotonic()
        outcome = "error"
        try:
            response = await self._request(url, method, params, idempotency_token)
            outcome = "ok"
            return response
        finally:
            if self._metrics is not None:
                self._metrics.time_webhook(self._kind, outcome, time.monotonic() - started)

    async def _request(self, url: str, method: str, params: Sequence[tuple[str, str]],
                       idempotency_token: str | None) -> WebhookResponse:
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"unsupported webhook method {method!r}")
        base, fragment = split_fragment(url)
        # Twilio's connection overrides #ct and #rt: this request's connect and read timeouts.
        # #tt (total, 11203) and the retries (#rc, #rp) are the outbox's business, across the
        # attempts it makes (adapter/callbacks/connection_overrides.py).
        timeout = None
        if fragment:
            limits = parse_fragment(fragment).request_timeouts()
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=limits.connect,
                                            sock_read=limits.read)
        hop = self._first_hop(_wire_url(base), method, params)
        extra = {IDEMPOTENCY_HEADER: idempotency_token} if idempotency_token else {}
        async with self._slots:
            for _ in range(self._max_redirects + 1):
                outcome = await self._exchange(hop, extra, limits=timeout)
                if isinstance(outcome, WebhookResponse):
                    return outcome
                hop = self._redirect_hop(hop, outcome, params)
            raise WebhookError(
                TOO_MANY_REDIRECTS,
                f"more than {self._max_redirects} redirects",
                url=hop.url,
            )

    def _first_hop(self, url: str, method: str, params: Sequence[tuple[str, str]]) -> _Hop:
        if method == "GET":
            final = _with_query(url, params)
            return _Hop(final, "GET", None, compute_signature(self._auth_token, final, []))
        body = urlencode(list(params)).encode("ascii")
        return _Hop(url, "POST", body, compute_signature(self._auth_token, url, params))

    def _redirect_hop(
        self, hop: _Hop, redirect: tuple[int, str | None], params: Sequence[tuple[str, str]]
    ) -> _Hop:
        status, location = redirect
        if status not in _FOLLOWED_REDIRECTS or not location:
            raise WebhookError(
                INVALID_REDIRECT,
                f"HTTP {status} is not a redirect Twilio follows"
                if location
                else f"HTTP {status} without a Location header",
                url=hop.url,
                status=status,
            )
        target, _ = split_fragment(urljoin(hop.url, location))
        try:
            target = _wire_url(target)
        except WebhookError as exc:
            raise WebhookError(
                INVALID_REDIRECT, f"redirect to an invalid URL: {exc.message}",
                url=hop.url, status=status,
            ) from exc
        if hop.method == "POST" and status == 307:
            return _Hop(
                target, "POST", hop.body, compute_signature(self._auth_token, target, params)
            )
        return _Hop(target, "GET", None, compute_signature(self._auth_token, target, []))

    async def _exchange(
        self, hop: _Hop, extra_headers: Mapping[str, str], *,
        limits: aiohttp.ClientTimeout | None = None,
    ) -> WebhookResponse | tuple[int, str | None]:
        """Perform one hop: a WebhookResponse, or (status, Location) for a 3xx."""
        session = self._session
        if session is None:
            raise RuntimeError("WebhookClient.start() has not been called")
        headers = {
            "User-Agent": self._user_agent,
            "Accept": "*/*",
            SIGNATURE_HEADER: hop.signature,
            **extra_headers,
        }
        if hop.body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            # The host exactly as aiohttp's connector will read it.
            self._egress.check_host(yarl.URL(hop.url, encoded=True).raw_host or "")
        except TargetRefused as exc:
            raise WebhookError(BAD_HOST_NAME, str(exc), url=hop.url) from None
        try:
            async with session.request(
                hop.method,
                yarl.URL(hop.url, encoded=True),
                data=hop.body,
                headers=headers,
                allow_redirects=False,
                timeout=limits if limits is not None else session.timeout,
            ) as resp:
                if 300 <= resp.status < 400:
                    return resp.status, resp.headers.get("Location")
                if not 200 <= resp.status < 300:
                    raise WebhookError(
                        RETRIEVAL_FAILURE,
                        f"got HTTP {resp.status} response",
                        url=hop.url,
                        status=resp.status,
                    )
                body = await self._read_bounded(resp, hop.url)
                return WebhookResponse(
                    status=resp.status,
                    content_type=resp.headers.get("Content-Type"),
                    body=body,
                    url=hop.url,
                )
        except WebhookError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise error_for(exc, hop.url) from exc

    async def _read_bounded(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        too_large = WebhookError(
            BODY_TOO_LARGE,
            f"response body larger than {self._max_body} bytes",
            url=url,
            status=resp.status,
        )
        if resp.content_length is not None and resp.content_length > self._max_body:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)
