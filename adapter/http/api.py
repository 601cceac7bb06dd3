"""The Twilio-compatible REST API (2010-04-01): Recordings and Calls, driven by the `twilio` SDK.

| route (under ``/2010-04-01/Accounts/{AccountSid}``) | what |
|---|---|
| ``GET /Recordings.json`` | list (CallSid, DateCreated, DateCreated<, DateCreated>, paging) |
| ``DELETE /Recordings/{Sid}[.json]`` | delete (media and metadata) |
| ``GET /Calls.json``, ``GET /Calls/{CallSid}.json`` | list, fetch calls |
| ``POST /Calls.json`` | an outbound call (To, From, Url/Twiml, Method, StatusCallback*,
  Timeout, Record with RecordingChannels, RecordingStatusCallback*, RecordingTrack, Trim) |
| ``POST /Calls/{CallSid}.json`` | ``Status=completed``: end a live call; ``Url``/``Method`` or
  ``Twiml``: run new TwiML now (what is running is cut short) |
| ``GET, POST /Calls/{CallSid}/Recordings.json`` | list, start a recording on a live call |
| ``GET, POST, DELETE /Calls/{CallSid}/Recordings/{Sid}.json`` | fetch; pause/resume/stop; delete |
| ``GET /Transcriptions.json``, ``GET /Recordings/{Sid}/Transcriptions.json`` | list |
| ``GET, DELETE [/Recordings/{Sid}]/Transcriptions/{Sid}[.json or .txt]`` | fetch (``.txt``: the
  text alone), delete |

Media (``GET /Recordings/{Sid}`` ``.wav``/``.mp3``/``.json``) is served by `adapter.http.app`.
Every request needs HTTP Basic auth (account SID : auth token); errors are Twilio's JSON body.
The handlers are in `recordings_api`, `transcriptions_api` and `calls_api`, over `api_context`
(what they share) and `params` (reading a request); this module holds the route table and the
guard around each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapter.config import Config
from adapter.db.store import Store
from adapter.http.api_context import ApiContext
from adapter.http.auth import authorized
from adapter.http.calls_api import CallsApi, OutboundCalls
from adapter.http.errors import ApiError, not_found, twilio_error
from adapter.http.recordings_api import RecordingsApi
from adapter.http.resources import API
from adapter.http.transcriptions_api import TranscriptionsApi

if TYPE_CHECKING:
    from adapter.interpreter.session import CallSession

__all__ = ["Endpoint", "api_routes", "routes_by_path"]

Handler = Callable[[Request], Awaitable[Response]]
Endpoint = tuple[str, str, Handler]  # (path, method, handler)


def api_routes(config: Config, store: Store, live_calls: Mapping[str, CallSession],
               outbound_calls: OutboundCalls | None = None) -> list[Endpoint]:
    """Every REST endpoint, each behind the account's Basic auth."""
    ctx = ApiContext(config, store, live_calls)
    recordings = RecordingsApi(ctx)
    calls = CallsApi(ctx, outbound_calls)
    transcriptions = TranscriptionsApi(ctx)

    def guarded(handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not authorized(request, config.account_sid, config.auth_token):
                return twilio_error(401, 20003, "Authenticate")
            if request.path_params.get("account") != config.account_sid:
                return not_found(request).response()
            try:
                result = await handler(request)
            except ApiError as exc:
                return exc.response()
            if isinstance(result, Response):
                return result
            return JSONResponse(result, status_code=status)
        return endpoint

    account = f"{API}/Accounts/{{account}}"
    return [
        (f"{account}/Recordings.json", "GET", guarded(recordings.list_for_account)),
        (f"{account}/Recordings/{{sid}}", "DELETE", guarded(recordings.delete_for_account)),
        (f"{account}/Calls.json", "GET", guarded(calls.list_calls)),
        (f"{account}/Calls.json", "POST", guarded(calls.create, 201)),
        (f"{account}/Calls/{{call}}/Recordings.json", "GET", guarded(recordings.list_for_call)),
        (f"{account}/Calls/{{call}}/Recordings.json", "POST", guarded(recordings.create, 201)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "GET", guarded(recordings.fetch)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "POST", guarded(recordings.update)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "DELETE",
         guarded(recordings.delete_for_call)),
        (f"{account}/Transcriptions.json", "GET", guarded(transcriptions.list)),
        (f"{account}/Transcriptions/{{sid}}", "GET", guarded(transcriptions.fetch)),
        (f"{account}/Transcriptions/{{sid}}", "DELETE", guarded(transcriptions.delete)),
        (f"{account}/Recordings/{{recording}}/Transcriptions.json", "GET",
         guarded(transcriptions.list)),
        (f"{account}/Recordings/{{recording}}/Transcriptions/{{sid}}", "GET",
         guarded(transcriptions.fetch)),
        (f"{account}/Recordings/{{recording}}/Transcriptions/{{sid}}", "DELETE",
         guarded(transcriptions.delete)),
        (f"{account}/Calls/{{call}}", "GET", guarded(calls.fetch)),
        (f"{account}/Calls/{{call}}", "POST", guarded(calls.update)),
    ]


def routes_by_path(endpoints: list[Endpoint]) -> list[Route]:
    """One starlette Route per path, dispatching on the method, so that a 405 answer's
    ``Allow`` header lists every method the path supports."""
    grouped: dict[str, dict[str, Handler]] = {}
    for path, method, handler in endpoints:
        grouped.setdefault(path, {})[method] = handler

    def dispatcher(handlers: dict[str, Handler]) -> Handler:
        async def endpoint(request: Request) -> Response:
            # starlette adds HEAD wherever GET is allowed; it is answered as GET (no body).
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)
        return endpoint

    return [Route(path, dispatcher(handlers), methods=list(handlers))
            for path, handlers in grouped.items()]
