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

Media (``GET /Recordings/{Sid}`` ``.wav``/``.mp3``/``.json``) is served by `adapter.http.app`.
Every request needs HTTP Basic auth (account SID : auth token); errors are Twilio's JSON body.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapter.addresses import CALLER_ID, PHONE_NUMBER, SIP_URI
from adapter.config import Config
from adapter.db.store import Store
from adapter.http.auth import authorized
from adapter.http.errors import twilio_error
from adapter.http.resources import API, call_json, page_json, recording_json
from adapter.interpreter.outbound import OutboundCall
from adapter.interpreter.session import Fetch, Inline
from adapter.pbx.base import PbxError
from adapter.recordings.status_callback import START_CALL_RECORDING_API
from adapter.sids import CALL, new_sid
from adapter.twiml import StartRecording

if TYPE_CHECKING:
    from adapter.interpreter.session import CallSession

__all__ = ["Endpoint", "OutboundCalls", "api_routes", "routes_by_path"]

CURRENT = "Twilio.CURRENT"
MAX_FORM_BYTES = 65536
MAX_PAGE_SIZE = 1000
_CALL_RE = re.compile(r"CA[0-9a-f]{32}")
_RECORDING_RE = re.compile(r"RE[0-9a-f]{32}")

Handler = Callable[[Request], Awaitable[Response]]


class OutboundCalls(Protocol):
    """Where REST-created calls go (the running `Adapter`)."""

    async def place_call(self, outbound: OutboundCall) -> None:
        """Create the call's row and start it on the PBX (returns at once)."""

    async def cancel_call(self, call_sid: str) -> bool:
        """End a call that is queued or ringing; False if it is not (any more)."""

Endpoint = tuple[str, str, Handler]  # (path, method, handler)


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _not_found(request: Request) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {request.url.path} was not found")


def _bad(message: str, code: int = 20001) -> ApiError:
    return ApiError(400, code, message)


def _strip_json(value: str) -> str:
    return value[:-5] if value.endswith(".json") else value


async def _form(request: Request) -> list[tuple[str, str]]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, 20001, "Request body too large")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _bad("The request body is not UTF-8") from None


def _one(form: list[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in form if k == key]
    return values[-1] if values else None


def _choice(form: list[tuple[str, str]], key: str, allowed: set[str], default: str) -> str:
    value = _one(form, key)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise _bad(f"{key} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value


def _callback_url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad(f"RecordingStatusCallback must be an absolute http(s) URL, not {value!r}",
                   11100)
    return value


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad(f"Url must be an absolute http(s) URL, not {value!r}", 21205)
    return value


def _events(form: list[tuple[str, str]]) -> frozenset[str]:
    events = frozenset(e for k, v in form if k == "RecordingStatusCallbackEvent"
                       for e in v.replace(",", " ").split())
    if not events:
        return frozenset({"completed"})
    unknown = events - {"in-progress", "completed", "absent"}
    if unknown:
        raise _bad(f"RecordingStatusCallbackEvent has unknown events: {sorted(unknown)}", 13621)
    return events


def _recording_spec(form: list[tuple[str, str]], *, default_trim: str) -> StartRecording:
    """The Recording* / Trim parameters of a REST request (mono by default)."""
    return StartRecording(
        name=None,
        recording_status_callback=_callback_url(_one(form, "RecordingStatusCallback")),
        recording_status_callback_method=_choice(
            form, "RecordingStatusCallbackMethod", {"GET", "POST"}, "POST"),
        recording_status_callback_event=_events(form),
        trim=_choice(form, "Trim", {"trim-silence", "do-not-trim"}, default_trim),
        track=_choice(form, "RecordingTrack", {"inbound", "outbound", "both"}, "both"),
        channels=_choice(form, "RecordingChannels", {"mono", "dual"}, "mono"),
    )


def _parse_moment(key: str, value: str) -> tuple[datetime, bool]:
    """A DateCreated filter value: (instant, is_whole_day)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{key} must be YYYY-MM-DD or an ISO 8601 time, not {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), False


def _paging(request: Request) -> tuple[int, int]:
    try:
        size = int(request.query_params.get("PageSize", "50"))
        page = int(request.query_params.get("Page", "0"))
    except ValueError:
        raise _bad("PageSize and Page must be integers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        raise _bad(f"PageSize must be 1..{MAX_PAGE_SIZE} and Page 0 or more")
    return size, page


def api_routes(config: Config, store: Store, live_calls: Mapping[str, CallSession],
               outbound_calls: OutboundCalls | None = None) -> list[Endpoint]:
    base_url = config.http.public_base_url

    def guarded(handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not authorized(request, config.account_sid, config.auth_token):
                return twilio_error(401, 20003, "Authenticate")
            if request.path_params.get("account") != config.account_sid:
                return twilio_error(*_as_tuple(_not_found(request)))
            try:
                result = await handler(request)
            except ApiError as exc:
                return twilio_error(exc.status, exc.code, exc.message)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, status_code=status)
        return endpoint

    def live(request: Request, call_sid: str) -> CallSession:
        session = live_calls.get(call_sid)
        if session is None or session.call.hung_up.is_set():
            raise ApiError(400, 21220, f"Call {call_sid} is not in progress (Invalid call state)")
        return session

    async def call_row_or_404(request: Request) -> str:
        call_sid = _strip_json(request.path_params["call"])
        if not _CALL_RE.fullmatch(call_sid):
            raise _not_found(request)
        row = await store.get_call(call_sid)
        if row is None or row.account_sid != config.account_sid:
            raise _not_found(request)
        return call_sid

    # --- recordings ---------------------------------------------------------------------------

    async def list_recordings(request: Request, call_sid: str | None = None) -> dict[str, Any]:
        size, page = _paging(request)
        filters: list[tuple[str, str]] = []
        created_from = created_before = None
        if call_sid is None and (value := request.query_params.get("CallSid")):
            call_sid = value
            filters.append(("CallSid", value))
        for key in ("DateCreated", "DateCreated>", "DateCreated<"):
            value = request.query_params.get(key)
            if not value:
                continue
            filters.append((key, value))
            moment, whole_day = _parse_moment(key, value)
            end = moment + (timedelta(days=1) if whole_day else timedelta(seconds=1))
            if key == "DateCreated":
                created_from, created_before = moment, end
            elif key == "DateCreated>":
                created_from = moment
            else:
                created_before = end
        rows = await store.list_recordings(
            config.account_sid, call_sid=call_sid, created_from=created_from,
            created_before=created_before, limit=size + 1, offset=page * size,
        )
        path = (f"{API}/Accounts/{config.account_sid}/Calls/{call_sid}/Recordings.json"
                if request.path_params.get("call") else
                f"{API}/Accounts/{config.account_sid}/Recordings.json")
        scoped = bool(request.path_params.get("call"))
        return page_json(
            "recordings", [recording_json(base_url, r, call_scoped=scoped) for r in rows[:size]],
            path=path, page=page, page_size=size, has_next=len(rows) > size,
            filters=[f for f in filters if f[0] != "CallSid" or not scoped],
        )

    async def account_recordings(request: Request) -> dict[str, Any]:
        return await list_recordings(request)

    async def call_recordings(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        return await list_recordings(request, call_sid)

    async def create_recording(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        form = await _form(request)
        session = live(request, call_sid)
        # The REST defaults differ from <Recording>'s: mono and do-not-trim.
        spec = _recording_spec(form, default_trim="do-not-trim")
        try:
            sid = await session.recorder.start(spec, "", source=START_CALL_RECORDING_API)
        except PbxError as exc:
            raise ApiError(400, 21220, f"Call {call_sid}: cannot record: {exc}") from exc
        assert sid is not None
        row = await store.get_recording(config.account_sid, sid)
        assert row is not None
        return recording_json(base_url, row, call_scoped=True)

    async def resolve_recording(request: Request, call_sid: str) -> str:
        sid = _strip_json(request.path_params["sid"])
        if sid == CURRENT:
            session = live_calls.get(call_sid)
            active = list(session.recorder.active) if session is not None else []
            if len(active) > 1:
                raise ApiError(400, 16108, "Twilio.CURRENT is ambiguous: the call has "
                               f"{len(active)} active recordings; use a Recording SID")
            if not active:
                raise _not_found(request)
            return active[0]
        if not _RECORDING_RE.fullmatch(sid):
            raise _not_found(request)
        row = await store.get_recording(config.account_sid, sid)
        if row is None or row.call_sid != call_sid:
            raise _not_found(request)
        return sid

    async def fetch_call_recording(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        sid = await resolve_recording(request, call_sid)
        row = await store.get_recording(config.account_sid, sid)
        assert row is not None
        return recording_json(base_url, row, call_scoped=True)

    async def update_call_recording(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        form = await _form(request)
        status = _one(form, "Status")
        if status not in ("paused", "in-progress", "stopped"):
            raise _bad(f"Status must be paused, in-progress or stopped, not {status!r}")
        behavior = _choice(form, "PauseBehavior", {"skip", "silence"}, "silence")
        session = live(request, call_sid)
        sid = await resolve_recording(request, call_sid)
        if sid not in session.recorder.active:
            raise _bad(f"Recording {sid} is not in progress or paused")
        try:
            if status == "paused":
                await session.recorder.pause(sid, behavior)
            elif status == "in-progress":
                await session.recorder.resume(sid)
            else:
                await store.update_recording(sid, status="stopped")
                await session.recorder.stop_sid(sid)
        except PbxError as exc:
            raise ApiError(400, 21220, f"Call {call_sid}: {exc}") from exc
        row = await store.get_recording(config.account_sid, sid)
        assert row is not None
        body = recording_json(base_url, row, call_scoped=True)
        if status == "stopped":
            body["status"] = "stopped"
        return body

    async def delete_recording(request: Request, call_sid: str | None) -> Response:
        sid = _strip_json(request.path_params["sid"])
        row = (await store.get_recording(config.account_sid, sid)
               if _RECORDING_RE.fullmatch(sid) else None)
        if row is None or (call_sid is not None and row.call_sid != call_sid):
            raise _not_found(request)
        if row.status in ("in-progress", "paused", "stopped"):
            raise _bad(f"Recording {sid} is still {row.status}; stop it before deleting it")
        await store.delete_recording(config.account_sid, sid)
        if row.media_path:
            wav = config.data_dir / row.media_path
            for path in (wav, wav.with_suffix(".mp3")):
                path.unlink(missing_ok=True)
        return Response(status_code=204)

    async def delete_account_recording(request: Request) -> Response:
        return await delete_recording(request, None)

    async def delete_call_recording(request: Request) -> Response:
        return await delete_recording(request, await call_row_or_404(request))

    # --- calls --------------------------------------------------------------------------------

    async def list_calls(request: Request) -> dict[str, Any]:
        size, page = _paging(request)
        rows = await store.list_calls(config.account_sid, limit=size + 1, offset=page * size)
        return page_json("calls", [call_json(r) for r in rows[:size]],
                         path=f"{API}/Accounts/{config.account_sid}/Calls.json", page=page,
                         page_size=size, has_next=len(rows) > size)

    async def create_call(request: Request) -> dict[str, Any]:
        form = await _form(request)
        to, from_ = _one(form, "To") or "", _one(form, "From") or ""
        if not to:
            raise _bad("A 'To' phone number is required", 21201)
        if PHONE_NUMBER.fullmatch(to):
            target = ("number", to)
        elif SIP_URI.fullmatch(to):
            target = ("sip", to)
        else:
            raise _bad(f"The 'To' number {to} is not a valid phone number or SIP URI", 21211)
        if not from_ or not CALLER_ID.fullmatch(from_):
            raise _bad(f"A valid 'From' phone number is required, not {from_!r}", 21212)
        url, twiml = _one(form, "Url"), _one(form, "Twiml")
        if not url and not twiml:
            raise _bad("Url or Twiml is required", 21205)
        if twiml and len(twiml.encode()) > 4000:
            raise _bad("Twiml is longer than 4000 characters", 21234)
        try:
            timeout = int(_one(form, "Timeout") or "60")
        except ValueError:
            raise _bad("Timeout must be an integer") from None
        status_events = frozenset(e for k, v in form if k == "StatusCallbackEvent"
                                  for e in v.replace(",", " ").split()) or frozenset({"completed"})
        if not status_events <= {"initiated", "ringing", "answered", "completed"}:
            raise _bad(f"StatusCallbackEvent has unknown events: {sorted(status_events)}")
        record = (_one(form, "Record") or "false").lower() == "true"
        recording = _recording_spec(form, default_trim="trim-silence") if record else None
        if outbound_calls is None:
            raise ApiError(503, 20500, "Outbound calls are not available")
        outbound = OutboundCall(
            call_sid=new_sid(CALL), to=to, from_=from_, target=target,
            url=_absolute_url(url) if url else None,
            method=_choice(form, "Method", {"GET", "POST"}, "POST"), twiml=twiml,
            timeout=min(max(timeout, 5), 600),
            status_callback=_callback_url(_one(form, "StatusCallback")),
            status_callback_method=_choice(form, "StatusCallbackMethod", {"GET", "POST"}, "POST"),
            status_callback_events=status_events, recording=recording,
        )
        await outbound_calls.place_call(outbound)
        row = await store.get_call(outbound.call_sid)
        assert row is not None
        return call_json(row)

    async def fetch_call(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        row = await store.get_call(call_sid)
        assert row is not None
        return call_json(row)

    async def update_call(request: Request) -> dict[str, Any]:
        call_sid = await call_row_or_404(request)
        form = await _form(request)
        status = _one(form, "Status")
        url, twiml = _one(form, "Url"), _one(form, "Twiml")
        if status is None and not url and not twiml:
            raise _bad("Give Url, Twiml or Status")
        if status is not None and status not in ("completed", "canceled"):
            raise _bad(f"Status must be completed or canceled, not {status!r}")
        session = live_calls.get(call_sid)
        not_live = session is None or session.call.hung_up.is_set()
        # Queued or ringing (a REST call not answered yet): both statuses cancel it.
        if (status is not None and not_live and outbound_calls is not None
                and await outbound_calls.cancel_call(call_sid)):
            row = await store.get_call(call_sid)
            assert row is not None
            return {**call_json(row), "status": "canceled"}
        session = live(request, call_sid)
        if status == "canceled":
            pass  # Twilio: "canceled" does not affect a call in progress
        elif status is not None:
            await session.call.terminate()
        elif twiml:
            if len(twiml.encode()) > 4000:
                raise _bad("Twiml is longer than 4000 characters", 21234)
            await session.redirect(Inline(twiml, session.document_url))
        else:
            method = _choice(form, "Method", {"GET", "POST"}, "POST")
            await session.redirect(Fetch(_absolute_url(url or ""), method))
        row = await store.get_call(call_sid)
        assert row is not None
        body = call_json(row)
        if status == "completed":
            body["status"] = "completed"
        return body

    account = f"{API}/Accounts/{{account}}"
    return [
        (f"{account}/Recordings.json", "GET", guarded(account_recordings)),
        (f"{account}/Recordings/{{sid}}", "DELETE", guarded(delete_account_recording)),
        (f"{account}/Calls.json", "GET", guarded(list_calls)),
        (f"{account}/Calls.json", "POST", guarded(create_call, 201)),
        (f"{account}/Calls/{{call}}/Recordings.json", "GET", guarded(call_recordings)),
        (f"{account}/Calls/{{call}}/Recordings.json", "POST", guarded(create_recording, 201)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "GET", guarded(fetch_call_recording)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "POST",
         guarded(update_call_recording)),
        (f"{account}/Calls/{{call}}/Recordings/{{sid}}", "DELETE",
         guarded(delete_call_recording)),
        (f"{account}/Calls/{{call}}", "GET", guarded(fetch_call)),
        (f"{account}/Calls/{{call}}", "POST", guarded(update_call)),
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


def _as_tuple(error: ApiError) -> tuple[int, int, str]:
    return error.status, error.code, error.message
