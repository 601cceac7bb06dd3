"""The HTTP API against hostile clients: every route but the public ones demands the account's
Basic auth, and an internal failure answers Twilio's 20500 JSON with no stack trace or
exception text. Routes are enumerated from the app, so a new route is covered the day it lands;
a new public route must be added to PUBLIC on purpose."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, http_config
from starlette.routing import Route

from adapter.http import build_app
from adapter.metrics import Metrics

PUBLIC = {"/health", "/metrics", "/openapi.json"}
LEAK = "hunter2-db-password"


class ExplodingStore:
    """Every store call fails with a message that must never reach a client."""

    def __getattr__(self, name: str) -> Any:
        async def boom(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError(f"{LEAK} in /var/lib/twiml/adapter.db ({name})")

        return boom


def basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{user}:{password}".encode())
    return [(b"authorization", b"Basic " + token)]


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]
               ) -> tuple[int, bytes]:
    body = b"Url=http%3A%2F%2F127.0.0.1%3A9%2Fv&To=%2B15551230000&From=%2B15551239999"
    messages = [{"type": "http.request", "body": body if method == "POST" else b""}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    content_type = [(b"content-type", b"application/x-www-form-urlencoded")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers + content_type,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}
    try:
        await app(scope, receive, send)
    except Exception:  # Starlette re-raises for the server's log, after answering
        assert sent, "the exception escaped before any response was sent"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def requests(app: Any, methods: tuple[str, ...] = ("GET", "POST", "DELETE")
             ) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        assert isinstance(route, Route)
        path = route.path.replace("{account}", ACCOUNT_SID).replace("{call}", "CA" + "1" * 32)
        path = path.replace("{sid}", "RE" + "2" * 32).replace("{recording}", "RE" + "3" * 32)
        assert "{" not in path, f"unknown path parameter in {route.path}: extend requests()"
        out += [(method, path) for method in sorted(route.methods or ()) if method in methods]
    return out


@pytest.fixture(params=[False, True], ids=["media-auth", "public-media"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    config = http_config(tmp_path, 0, bool(request.param))
    return build_app(config, ExplodingStore(), Metrics(), {"pbx_connected": True})  # type: ignore[arg-type]


async def test_every_private_route_needs_the_accounts_credentials(app: Any) -> None:
    for method, path in requests(app):
        if path in PUBLIC:
            continue
        for headers in ([], basic(ACCOUNT_SID, AUTH_TOKEN + "x"), basic(ACCOUNT_SID, ""),
                        basic("AC" + "9" * 32, AUTH_TOKEN), [(b"authorization", b"Basic !!")]):
            status, body = await call(app, method, path, headers)
            public_media = method in ("GET", "HEAD") and re.search(r"/Recordings/RE\w+$", path)
            if status == 500 and public_media:
                continue  # public media, reached the (exploding) store: auth not required
            assert status == 401, (method, path, headers, status)
            if method != "HEAD":
                assert json.loads(body)["code"] == 20003


async def test_failures_inside_answer_20500_without_details(app: Any) -> None:
    answered = 0
    for method, path in requests(app):
        status, body = await call(app, method, path, basic(ACCOUNT_SID, AUTH_TOKEN))
        text = body.decode("utf-8", "replace")
        assert LEAK not in text and "Traceback" not in text and "RuntimeError" not in text
        if status == 500:
            answered += 1
            if method != "HEAD":
                assert json.loads(body) == {
                    "code": 20500, "message": "Internal Server Error",
                    "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}
    assert answered > 0  # the exploding store was reached


async def test_head_requests_are_answered_like_get(app: Any) -> None:
    """Starlette adds HEAD to every GET route: unauthenticated it must be a 401 too, and with
    credentials never a 500."""
    for method, path in requests(app, methods=("HEAD",)):
        if path in PUBLIC:
            continue
        status, _ = await call(app, method, path, [])
        if status == 500 and re.search(r"/Recordings/RE\w+$", path):
            continue  # public media, reached the (exploding) store: auth not required
        assert status == 401, (path, status)
