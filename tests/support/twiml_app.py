"""A customer's TwiML app for tests: a real HTTP server on 127.0.0.1 that answers each path with
TwiML (built with twilio's `VoiceResponse`) and records every request it receives, with its
signature checked by twilio's own `RequestValidator`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Recording, Start, Stop

__all__ = ["ReceivedRequest", "TwimlApp", "start_recording", "stop_recording"]

Answer = str | Callable[["ReceivedRequest"], str]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    url: str
    params: dict[str, str]
    signature_valid: bool
    headers: dict[str, str] = field(repr=False)


class TwimlApp:
    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.answers: dict[str, tuple[Answer, str]] = {}
        # Paths answered by a function of the request returning any aiohttp response (audio,
        # broken documents, odd content types).
        self.raw_routes: dict[str, Callable[[web.Request], web.StreamResponse]] = {}
        # Paths whose answer waits until the event is set (a slow server, on command).
        self.held: dict[str, asyncio.Event] = {}
        self.requests: list[ReceivedRequest] = []
        self._queues: dict[str, asyncio.Queue[ReceivedRequest]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def answer(self, path: str, twiml: object, content_type: str = "text/xml") -> None:
        """Answer `path` with this TwiML (a VoiceResponse, a str, or a function of the request)."""
        body: Answer = twiml if callable(twiml) and not hasattr(twiml, "to_xml") else str(twiml)
        self.answers[path] = (body, content_type)

    def queue(self, path: str) -> asyncio.Queue[ReceivedRequest]:
        return self._queues.setdefault(path, asyncio.Queue())

    async def next_request(self, path: str, within: float = 60.0) -> ReceivedRequest:
        return await asyncio.wait_for(self.queue(path).get(), within)

    def received(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            form = await request.post()
            params = {k: str(v) for k, v in form.items()}
            url = self.base_url + request.path_qs
            signed_params: dict[str, str] = params
        else:
            params = dict(request.query)
            url = self.base_url + request.path_qs
            signed_params = {}
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = self.validator.validate(url, signed_params, signature)
        received = ReceivedRequest(request.method, request.path, url, params, valid,
                                   dict(request.headers))
        self.requests.append(received)
        self.queue(request.path).put_nowait(received)
        if request.path in self.held:
            await self.held[request.path].wait()
        if request.path in self.raw_routes:
            return self.raw_routes[request.path](request)
        if request.path not in self.answers:
            return web.Response(status=204)
        answer, content_type = self.answers[request.path]
        text = answer(received) if callable(answer) else answer
        return web.Response(body=text.encode(), content_type=content_type.split(";")[0])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def start_recording(**recording: object) -> Start:
    """``<Start><Recording …/></Start>`` built with twilio's TwiML classes."""
    element = Start()
    element.recording(**recording)
    return element


def stop_recording(name: str) -> Stop:
    """``<Stop><Recording name=…/></Stop>``: twilio's Stop has no .recording() helper (it has
    stream/siprec/transcription), so the library's own <Recording> noun is nested."""
    element = Stop()
    element.append(Recording(name=name))
    return element
