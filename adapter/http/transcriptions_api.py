"""The REST Transcriptions resource: list, fetch (``.json``, or ``.txt`` for the text alone) and
delete, at account level and under a recording (``/Recordings/{RecordingSid}/Transcriptions``),
as Twilio serves them; the rows are `adapter.db.transcriptions`."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from adapter.db.transcriptions import (
    delete_transcription,
    get_transcription,
    list_transcriptions,
)
from adapter.http.api_context import ApiContext
from adapter.http.errors import not_found
from adapter.http.params import RECORDING_SID, paging
from adapter.http.resources import API, page_json, transcription_json

__all__ = ["TranscriptionsApi"]

_TRANSCRIPTION_PATH = re.compile(r"(TR[0-9a-f]{32})(\.json|\.txt)?")


class TranscriptionsApi:
    """The handlers of the Transcriptions resource."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _recording(self, request: Request) -> str | None:
        """The RecordingSid of a path under a recording (None at account level)."""
        recording = request.path_params.get("recording")
        if recording is None:
            return None
        if not RECORDING_SID.fullmatch(str(recording)):
            raise not_found(request)
        return str(recording)

    def _sid(self, request: Request) -> tuple[str, str]:
        """The TranscriptionSid in the path and its suffix ("" for none)."""
        match = _TRANSCRIPTION_PATH.fullmatch(str(request.path_params["sid"]))
        if match is None:
            raise not_found(request)
        return match.group(1), match.group(2) or ""

    async def list(self, request: Request) -> dict[str, Any]:
        account_sid = self.ctx.account_sid
        recording = self._recording(request)
        size, page = paging(request)
        rows = await list_transcriptions(self.ctx.store, account_sid, recording_sid=recording,
                                         limit=size + 1, offset=page * size)
        path = (f"{API}/Accounts/{account_sid}/Recordings/{recording}/Transcriptions.json"
                if recording else f"{API}/Accounts/{account_sid}/Transcriptions.json")
        return page_json("transcriptions", [transcription_json(r) for r in rows[:size]],
                         path=path, page=page, page_size=size, has_next=len(rows) > size)

    async def fetch(self, request: Request) -> dict[str, Any] | Response:
        sid, suffix = self._sid(request)
        row = await get_transcription(self.ctx.store, self.ctx.account_sid, sid,
                                      recording_sid=self._recording(request))
        if row is None:
            raise not_found(request)
        if suffix == ".txt":
            return PlainTextResponse(row.transcription_text or "")
        return transcription_json(row)

    async def delete(self, request: Request) -> Response:
        sid, _ = self._sid(request)
        if not await delete_transcription(self.ctx.store, self.ctx.account_sid, sid,
                                          recording_sid=self._recording(request)):
            raise not_found(request)
        return Response(status_code=204)
