"""The REST Calls resource: list and fetch calls, place an outbound call, and change a call in
progress (end it, or run new TwiML now)."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request

from adapter.addresses import CALLER_ID, PHONE_NUMBER, SIP_URI
from adapter.http.api_context import ApiContext
from adapter.http.errors import ApiError, bad_request
from adapter.http.params import (
    absolute_url,
    callback_url,
    check_twiml,
    choice,
    events,
    one,
    paging,
    read_form,
    recording_spec,
)
from adapter.http.resources import API, call_json, page_json
from adapter.interpreter.outbound import OutboundCall
from adapter.interpreter.session import Fetch, Inline
from adapter.sids import CALL, new_sid

__all__ = ["CallsApi", "OutboundCalls"]

CALL_STATUS_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})


class OutboundCalls(Protocol):
    """Where REST-created calls go (the running `Adapter`)."""

    async def queue_call(self, outbound: OutboundCall) -> None:
        """Create the call's row (``queued``) and send its ``initiated`` status callback."""

    async def dial_call(self, outbound: OutboundCall) -> None:
        """Start the queued call on the PBX (returns once the PBX has the originate)."""

    async def cancel_call(self, call_sid: str) -> bool:
        """End a call that is queued or ringing; False if it is not (any more)."""


class CallsApi:
    """The handlers of the Calls resource; each returns the JSON body."""

    def __init__(self, ctx: ApiContext, outbound_calls: OutboundCalls | None) -> None:
        self.ctx = ctx
        self.outbound_calls = outbound_calls

    async def list_calls(self, request: Request) -> dict[str, Any]:
        size, page = paging(request)
        account_sid = self.ctx.account_sid
        rows = await self.ctx.store.list_calls(account_sid, limit=size + 1, offset=page * size)
        return page_json("calls", [call_json(r) for r in rows[:size]],
                         path=f"{API}/Accounts/{account_sid}/Calls.json", page=page,
                         page_size=size, has_next=len(rows) > size)

    async def create(self, request: Request) -> dict[str, Any]:
        """Place an outbound call to a number or SIP URI, running ``Url`` or ``Twiml``."""
        form = await read_form(request)
        to, from_ = one(form, "To") or "", one(form, "From") or ""
        if not to:
            raise bad_request("A 'To' phone number is required", 21201)
        if PHONE_NUMBER.fullmatch(to):
            target = ("number", to)
        elif SIP_URI.fullmatch(to):
            target = ("sip", to)
        else:
            raise bad_request(f"The 'To' number {to} is not a valid phone number or SIP URI",
                              21211)
        if not from_ or not CALLER_ID.fullmatch(from_):
            raise bad_request(f"A valid 'From' phone number is required, not {from_!r}", 21212)
        url, twiml = one(form, "Url"), one(form, "Twiml")
        if not url and not twiml:
            raise bad_request("Url or Twiml is required", 21205)
        if twiml:
            check_twiml(twiml)
        try:
            timeout = int(one(form, "Timeout") or "60")
        except ValueError:
            raise bad_request("Timeout must be an integer") from None
        status_events = events(form, "StatusCallbackEvent") or frozenset({"completed"})
        if not status_events <= CALL_STATUS_EVENTS:
            raise bad_request(f"StatusCallbackEvent has unknown events: {sorted(status_events)}")
        record = (one(form, "Record") or "false").lower() == "true"
        recording = recording_spec(form, default_trim="trim-silence") if record else None
        if self.outbound_calls is None:
            raise ApiError(503, 20500, "Outbound calls are not available")
        outbound = OutboundCall(
            call_sid=new_sid(CALL), to=to, from_=from_, target=target,
            url=absolute_url(url) if url else None,
            method=choice(form, "Method", {"GET", "POST"}, "POST"), twiml=twiml,
            timeout=min(max(timeout, 5), 600),
            status_callback=callback_url(one(form, "StatusCallback")),
            status_callback_method=choice(form, "StatusCallbackMethod", {"GET", "POST"}, "POST"),
            status_callback_events=status_events, recording=recording,
        )
        await self.outbound_calls.queue_call(outbound)
        # Twilio answers with the call as it was queued, whatever the PBX does next (on a busy
        # machine the callee may already ring before the originate's reply is read).
        body = await self.ctx.call_body(outbound.call_sid)
        await self.outbound_calls.dial_call(outbound)
        return body

    async def fetch(self, request: Request) -> dict[str, Any]:
        return await self.ctx.call_body(await self.ctx.call_in_path(request))

    async def update(self, request: Request) -> dict[str, Any]:
        """``Status`` completed or canceled: end the call (cancel it while queued or ringing);
        ``Url``/``Method`` or ``Twiml``: run new TwiML now."""
        ctx = self.ctx
        call_sid = await ctx.call_in_path(request)
        form = await read_form(request)
        status = one(form, "Status")
        url, twiml = one(form, "Url"), one(form, "Twiml")
        if status is None and not url and not twiml:
            raise bad_request("Give Url, Twiml or Status")
        if status is not None and status not in ("completed", "canceled"):
            raise bad_request(f"Status must be completed or canceled, not {status!r}")
        session = ctx.live_calls.get(call_sid)
        not_live = session is None or session.call.hung_up.is_set()
        # Queued or ringing (a REST call not answered yet): both statuses cancel it.
        if (status is not None and not_live and self.outbound_calls is not None
                and await self.outbound_calls.cancel_call(call_sid)):
            return {**await ctx.call_body(call_sid), "status": "canceled"}
        session = ctx.live(call_sid)
        if status == "canceled":
            pass  # Twilio: "canceled" does not affect a call in progress
        elif status is not None:
            await session.call.terminate()
        elif twiml:
            check_twiml(twiml)
            await session.redirect(Inline(twiml, session.document_url))
        else:
            method = choice(form, "Method", {"GET", "POST"}, "POST")
            await session.redirect(Fetch(absolute_url(url or ""), method))
        body = await ctx.call_body(call_sid)
        if status == "completed":
            body["status"] = "completed"
        return body
