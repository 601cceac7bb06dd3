"""What every REST resource handler works with: the configuration, the store and the live
calls, and the lookups the Calls and Recordings resources share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from adapter.config import Config
from adapter.db.store import Store
from adapter.http.errors import ApiError, not_found
from adapter.http.params import CALL_SID, strip_json
from adapter.http.resources import call_json, recording_json

if TYPE_CHECKING:
    from adapter.interpreter.session import CallSession

__all__ = ["ApiContext"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The adapter's state as the REST API sees it."""

    config: Config
    store: Store
    live_calls: Mapping[str, CallSession]

    @property
    def account_sid(self) -> str:
        return self.config.account_sid

    def live(self, call_sid: str) -> CallSession:
        """The session of a call in progress; 21220 when it is not (any more)."""
        session = self.live_calls.get(call_sid)
        if session is None or session.call.hung_up.is_set():
            raise ApiError(400, 21220, f"Call {call_sid} is not in progress (Invalid call state)")
        return session

    async def call_in_path(self, request: Request) -> str:
        """The SID of the account's call named by the path (``{call}``); 404 when unknown."""
        call_sid = strip_json(request.path_params["call"])
        if not CALL_SID.fullmatch(call_sid):
            raise not_found(request)
        row = await self.store.get_call(call_sid)
        if row is None or row.account_sid != self.account_sid:
            raise not_found(request)
        return call_sid

    async def call_body(self, call_sid: str) -> dict[str, Any]:
        """The Call resource of a call known to exist."""
        row = await self.store.get_call(call_sid)
        assert row is not None
        return call_json(row)

    async def call_recording_body(self, sid: str) -> dict[str, Any]:
        """The Recording resource of a recording known to exist, as fetched under its call."""
        row = await self.store.get_recording(self.account_sid, sid)
        assert row is not None
        return recording_json(self.config.http.public_base_url, row, call_scoped=True)
