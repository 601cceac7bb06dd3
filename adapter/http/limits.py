"""Request-size limit for the HTTP API, as a small ASGI middleware.

Every request body is read here first, up to `max_body` bytes, before the app sees any of it; a
larger one (declared by ``Content-Length`` or found while reading a chunked body) is answered
``413`` with Twilio's error 20413 ("Request Entity Too Large") in Twilio's JSON, and the app never
runs. The REST API takes small form bodies (Twilio caps ``Twiml`` at 4 000 characters), so the
default of 64 kB leaves room and still bounds the memory a client can make the adapter hold.

Install it in `build_app`::

    Starlette(..., middleware=[Middleware(RequestSizeLimit, max_body=MAX_REQUEST_BODY)])
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.http.errors import twilio_error

__all__ = ["MAX_REQUEST_BODY", "RequestSizeLimit"]

MAX_REQUEST_BODY = 65536


class RequestSizeLimit:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_REQUEST_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = twilio_error(
            413, 20413, f"Request Entity Too Large: the body is over {self.max_body} bytes"
        )
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the whole body once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
