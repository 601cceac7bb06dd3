"""Routes:

- ``GET /2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}`` (and ``.wav``): WAV, ``audio/x-wav``
- ``GET .../Recordings/{Sid}.mp3``: MP3, ``audio/mpeg`` (encoded once, on first request)
- ``GET .../Recordings/{Sid}.json``: the recording's metadata
- ``GET /health``, ``GET /metrics``, ``GET /openapi.json``
- the REST API (`adapter.http.api`)

Media needs HTTP Basic auth (account SID : auth token) unless ``http.public_media`` is true, the
switch Twilio offers as "enforce HTTP auth on media URLs".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from adapter.config import Config
from adapter.db.store import Store
from adapter.http.api import api_routes, routes_by_path
from adapter.http.auth import authorized
from adapter.http.calls_api import OutboundCalls
from adapter.http.errors import not_found, twilio_error
from adapter.http.health import HealthChecks
from adapter.http.limits import RequestSizeLimit
from adapter.http.openapi import openapi_document
from adapter.http.resources import recording_json
from adapter.metrics import Metrics
from adapter.recordings import layout, transcode

if TYPE_CHECKING:
    from adapter.interpreter.session import CallSession

__all__ = ["build_app"]

_SID_EXT = re.compile(r"(?P<sid>RE[0-9a-f]{32})(?:\.(?P<ext>wav|mp3|json))?")


def _not_found(request: Request) -> Response:
    return not_found(request).response()


def build_app(config: Config, store: Store, metrics: Metrics,
              health: HealthChecks | Mapping[str, Any] | None = None,
              live_calls: Mapping[str, CallSession] | None = None,
              outbound_calls: OutboundCalls | None = None) -> Starlette:
    mp3_locks: dict[str, asyncio.Lock] = {}

    async def recording(request: Request) -> Response:
        account = request.path_params["account"]
        match = _SID_EXT.fullmatch(request.path_params["sid"])
        is_media = not (match and match.group("ext") == "json")
        needs_auth = not (is_media and config.http.public_media)
        if needs_auth and not authorized(request, config.account_sid, config.auth_token):
            return twilio_error(401, 20003, "Authenticate")
        if match is None or account != config.account_sid:
            return _not_found(request)
        row = await store.get_recording(account, match.group("sid"))
        if row is None:
            return _not_found(request)
        ext = match.group("ext") or "wav"
        if ext == "json":
            return JSONResponse(recording_json(config.http.public_base_url, row))
        if row.status != "completed" or not row.media_path:
            return _not_found(request)
        wav = layout.media_file(config.media_dir, row.sid)  # not the node that made it
        if ext == "wav":
            metrics.inc("media_requests", "wav")
            return FileResponse(wav, media_type="audio/x-wav")
        mp3 = layout.mp3_file(wav)
        lock = mp3_locks.setdefault(row.sid, asyncio.Lock())
        async with lock:
            if not mp3.exists():
                await transcode.encode_mp3(wav, mp3)
        metrics.inc("media_requests", "mp3")
        return FileResponse(mp3, media_type="audio/mpeg")

    async def health_route(_request: Request) -> Response:
        # A fixed mapping: what tests without a PBX pass.
        state = (await health.report() if isinstance(health, HealthChecks)
                 else dict(health or {}))
        ok = all(v is True for v in state.values() if isinstance(v, bool))
        return JSONResponse({"status": "ok" if ok else "degraded", **state},
                            status_code=200 if ok else 503)

    async def openapi_route(_request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return _not_found(request)
        if status == 405:
            response = twilio_error(405, 20004, "Method not allowed")
            response.headers.update(getattr(exc, "headers", None) or {})  # Allow: (RFC 9110)
            return response
        return twilio_error(500, 20500, "Internal Server Error")

    async def server_error(_request: Request, _exc: Exception) -> Response:
        return twilio_error(500, 20500, "Internal Server Error")  # never a stack trace

    return Starlette(
        routes=routes_by_path([
            *api_routes(config, store, live_calls if live_calls is not None else {},
                        outbound_calls),
            ("/2010-04-01/Accounts/{account}/Recordings/{sid}", "GET", recording),
            ("/health", "GET", health_route),
            ("/metrics", "GET", metrics_route),
            ("/openapi.json", "GET", openapi_route),
        ]),
        exception_handlers={HTTPException: http_error, Exception: server_error},
        middleware=[Middleware(RequestSizeLimit)],
    )

