"""The REST Recordings resource: list (account-wide or under a call), start one on a live call,
fetch, pause/resume/stop, delete (media and metadata)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapter.http.api_context import ApiContext
from adapter.http.errors import ApiError, bad_request, not_found
from adapter.http.params import (
    RECORDING_SID,
    choice,
    one,
    paging,
    parse_moment,
    read_form,
    recording_spec,
    strip_json,
)
from adapter.http.resources import API, page_json, recording_json
from adapter.pbx.base import PbxError
from adapter.recordings import layout
from adapter.recordings.status_callback import START_CALL_RECORDING_API

__all__ = ["CURRENT", "RecordingsApi"]

CURRENT = "Twilio.CURRENT"  # the one active recording of the call


class RecordingsApi:
    """The handlers of the Recordings resource; each returns the JSON body or a Response."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def list_for_account(self, request: Request) -> dict[str, Any]:
        return await self._list(request)

    async def list_for_call(self, request: Request) -> dict[str, Any]:
        return await self._list(request, await self.ctx.call_in_path(request))

    async def _list(self, request: Request, call_sid: str | None = None) -> dict[str, Any]:
        ctx, account_sid = self.ctx, self.ctx.account_sid
        size, page = paging(request)
        filters: list[tuple[str, str]] = []
        created_from: datetime | None = None
        created_before: datetime | None = None
        if call_sid is None and (value := request.query_params.get("CallSid")):
            call_sid = value
            filters.append(("CallSid", value))
        for key in ("DateCreated", "DateCreated>", "DateCreated<"):
            value = request.query_params.get(key)
            if not value:
                continue
            filters.append((key, value))
            moment, whole_day = parse_moment(key, value)
            end = moment + (timedelta(days=1) if whole_day else timedelta(seconds=1))
            if key == "DateCreated":
                created_from, created_before = moment, end
            elif key == "DateCreated>":
                created_from = moment
            else:
                created_before = end
        rows = await ctx.store.list_recordings(
            account_sid, call_sid=call_sid, created_from=created_from,
            created_before=created_before, limit=size + 1, offset=page * size,
        )
        path = (f"{API}/Accounts/{account_sid}/Calls/{call_sid}/Recordings.json"
                if request.path_params.get("call") else
                f"{API}/Accounts/{account_sid}/Recordings.json")
        scoped = bool(request.path_params.get("call"))
        base_url = ctx.config.http.public_base_url
        return page_json(
            "recordings", [recording_json(base_url, r, call_scoped=scoped) for r in rows[:size]],
            path=path, page=page, page_size=size, has_next=len(rows) > size,
            filters=[f for f in filters if f[0] != "CallSid" or not scoped],
        )

    async def create(self, request: Request) -> dict[str, Any]:
        """Start a recording on a live call."""
        call_sid = await self.ctx.call_in_path(request)
        form = await read_form(request)
        session = self.ctx.live(call_sid)
        # The REST defaults differ from <Recording>'s: mono and do-not-trim.
        spec = recording_spec(form, default_trim="do-not-trim")
        try:
            sid = await session.recorder.start(spec, "", source=START_CALL_RECORDING_API)
        except PbxError as exc:
            raise ApiError(400, 21220, f"Call {call_sid}: cannot record: {exc}") from exc
        assert sid is not None
        return await self.ctx.call_recording_body(sid)

    async def _resolve(self, request: Request, call_sid: str) -> str:
        """The recording SID the path names under the call (``Twilio.CURRENT`` included)."""
        sid = strip_json(request.path_params["sid"])
        if sid == CURRENT:
            session = self.ctx.live_calls.get(call_sid)
            active = list(session.recorder.active) if session is not None else []
            if len(active) > 1:
                raise ApiError(400, 16108, "Twilio.CURRENT is ambiguous: the call has "
                               f"{len(active)} active recordings; use a Recording SID")
            if not active:
                raise not_found(request)
            return active[0]
        if not RECORDING_SID.fullmatch(sid):
            raise not_found(request)
        row = await self.ctx.store.get_recording(self.ctx.account_sid, sid)
        if row is None or row.call_sid != call_sid:
            raise not_found(request)
        return sid

    async def fetch(self, request: Request) -> dict[str, Any]:
        call_sid = await self.ctx.call_in_path(request)
        return await self.ctx.call_recording_body(await self._resolve(request, call_sid))

    async def update(self, request: Request) -> dict[str, Any]:
        """``Status``: paused (``PauseBehavior`` skip or silence), in-progress or stopped."""
        call_sid = await self.ctx.call_in_path(request)
        form = await read_form(request)
        status = one(form, "Status")
        if status not in ("paused", "in-progress", "stopped"):
            raise bad_request(f"Status must be paused, in-progress or stopped, not {status!r}")
        behavior = choice(form, "PauseBehavior", {"skip", "silence"}, "silence")
        session = self.ctx.live(call_sid)
        sid = await self._resolve(request, call_sid)
        if sid not in session.recorder.active:
            raise bad_request(f"Recording {sid} is not in progress or paused")
        try:
            if status == "paused":
                await session.recorder.pause(sid, behavior)
            elif status == "in-progress":
                await session.recorder.resume(sid)
            else:
                await self.ctx.store.update_recording(sid, status="stopped")
                await session.recorder.stop_sid(sid)
        except PbxError as exc:
            raise ApiError(400, 21220, f"Call {call_sid}: {exc}") from exc
        body = await self.ctx.call_recording_body(sid)
        if status == "stopped":
            body["status"] = "stopped"
        return body

    async def delete_for_account(self, request: Request) -> Response:
        return await self._delete(request, None)

    async def delete_for_call(self, request: Request) -> Response:
        return await self._delete(request, await self.ctx.call_in_path(request))

    async def _delete(self, request: Request, call_sid: str | None) -> Response:
        """Delete a finished recording: its row, then its WAV and MP3 files."""
        ctx = self.ctx
        sid = strip_json(request.path_params["sid"])
        row = (await ctx.store.get_recording(ctx.account_sid, sid)
               if RECORDING_SID.fullmatch(sid) else None)
        if row is None or (call_sid is not None and row.call_sid != call_sid):
            raise not_found(request)
        if row.status in ("in-progress", "paused", "stopped"):
            raise bad_request(f"Recording {sid} is still {row.status}; stop it before deleting it")
        await ctx.store.delete_recording(ctx.account_sid, sid)
        if row.media_path:
            wav = layout.media_file(ctx.config.media_dir, row.sid)
            for path in (wav, layout.mp3_file(wav)):
                path.unlink(missing_ok=True)
        return Response(status_code=204)
