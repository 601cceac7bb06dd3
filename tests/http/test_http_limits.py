"""RequestSizeLimit: bodies over the limit get Twilio's 413/20413 and the app never runs; bodies
within it reach the app whole, however they were chunked. Driven through the ASGI interface."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapter.http.limits import RequestSizeLimit

LIMIT = 1000


def make_app() -> tuple[RequestSizeLimit, list[int]]:
    ran: list[int] = []

    async def calls(request: Request) -> JSONResponse:
        body = await request.body()
        ran.append(len(body))
        return JSONResponse({"received": len(body)}, status_code=201)

    app = Starlette(routes=[Route("/Calls.json", calls, methods=["POST", "GET"])])
    return RequestSizeLimit(app, max_body=LIMIT), ran


async def call(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)] or [{"type": "http.request", "body": b""}]
    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": "/Calls.json", "raw_path": b"/Calls.json",
             "query_string": b"", "root_path": "", "headers": headers or [],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}
    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], json.loads(body), dict(start["headers"])


@pytest.mark.parametrize("chunks", [[b"x" * LIMIT], [b"x" * 100] * 10, [], [b"", b"a", b""]])
async def test_bodies_within_the_limit_reach_the_app_whole(chunks: list[bytes]) -> None:
    app, ran = make_app()
    status, body, _ = await call(app, chunks)
    expected = sum(map(len, chunks))
    assert (status, body, ran) == (201, {"received": expected}, [expected])


async def test_declared_oversized_body_is_refused_unread() -> None:
    app, ran = make_app()
    status, body, headers = await call(
        app, [b"x" * (LIMIT + 1)], headers=[(b"content-length", str(LIMIT + 1).encode())]
    )
    assert status == 413 and ran == []
    assert body == {"code": 20413, "status": 413,
                    "message": f"Request Entity Too Large: the body is over {LIMIT} bytes",
                    "more_info": "https://www.twilio.com/docs/errors/20413"}
    assert headers[b"connection"] == b"close"


async def test_chunked_body_that_grows_too_large_is_refused() -> None:
    app, ran = make_app()
    status, body, _ = await call(app, [b"x" * 600, b"y" * 600, b"z" * 10_000_000])
    assert status == 413 and body["code"] == 20413 and ran == []


async def test_lying_content_length_does_not_get_past_the_count() -> None:
    app, ran = make_app()
    status, _, _ = await call(app, [b"x" * 5000], headers=[(b"content-length", b"10")])
    assert status == 413 and ran == []


async def test_without_the_middleware_the_app_reads_any_size() -> None:
    """What the limit prevents: the bare app buffers all of it."""
    app, ran = make_app()
    status, _, _ = await call(app.app, [b"x" * 600] * 10)
    assert status == 201 and ran == [6000]
