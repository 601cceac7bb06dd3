"""The callbacks and requests still owed for what recovery finished: the recording status
callbacks nobody queued, the action request of an interrupted `<Record>`, and the ``completed``
status callback of an interrupted REST call. Each carries the event id the live call would have
used, so the outbox never queues one twice."""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit

from adapter.callbacks.events import call_status_event, record_action_event, recording_event
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.owed_requests import OwedRequest, forget_record_action
from adapter.config import Config
from adapter.db.store import CallRow, RecordingRow, Store
from adapter.interpreter.outbound import call_status_params
from adapter.interpreter.params import CallInfo
from adapter.interpreter.record import record_action_params
from adapter.recordings.status_callback import status_callback_params
from adapter.recovery.selection import OPEN_RECORDING_STATUSES

__all__ = ["make_record_action", "queue_missing_callbacks", "send_final_call_status"]

log = logging.getLogger(__name__)


def _callback_url(recording: RecordingRow, call: CallRow, config: Config) -> str | None:
    url = recording.status_callback
    if not url:
        return None
    if urlsplit(url).scheme:
        return url
    route = config.route_for(call.to) if call.direction == "inbound" else None
    if route is None:
        log.error("recovery: recording %s: relative status callback %r and no Voice URL to "
                  "resolve it against; not sent", recording.sid, url)
        return None
    log.warning("recovery: recording %s: relative status callback %r resolved against the "
                "Voice URL %s", recording.sid, url, route.voice_url)
    return urljoin(route.voice_url, url)


def _callback_params(recording: RecordingRow, status: str, config: Config) -> list[tuple[str, str]]:
    """The row's ``status`` callback, as the live call sends it."""
    return status_callback_params(
        recording, status, config.recording_url(recording.sid),
        duration=recording.duration if status == "completed" else None,
        error_code=recording.error_code if status == "absent" else None,
    )


async def queue_missing_callbacks(
    outbox: Outbox, config: Config, recording: RecordingRow, call: CallRow
) -> int:
    """Queue the callbacks `recording` asked for that the outbox has never seen; returns how
    many were queued."""
    url = _callback_url(recording, call, config)
    if url is None:
        return 0
    events = set(recording.status_callback_events.split())
    wanted = [s for s in ("in-progress", recording.status) if s in events]
    if recording.status not in ("completed", "absent"):
        wanted = [s for s in wanted if s == "in-progress"]
    if not wanted:
        return 0
    seen = await outbox.queued_recording_statuses(recording.sid)
    queued = 0
    for status in wanted:
        if status in seen:
            continue
        row_id = await outbox.enqueue(recording.sid, url, recording.status_callback_method,
                                      _callback_params(recording, status, config),
                                      event=recording_event(recording.sid, status))
        if row_id is None:
            continue  # queued meanwhile (by the session, a sweep or another recovery)
        log.info("recovery: recording %s: %s callback queued", recording.sid, status)
        queued += 1
    return queued


def _call_info(call: CallRow, status: str) -> CallInfo:
    return CallInfo(account_sid=call.account_sid, call_sid=call.sid, from_=call.from_,
                    to=call.to, caller_name=call.caller_name or "", direction=call.direction,
                    status=status)


async def make_record_action(
    store: Store, outbox: Outbox, config: Config, request: OwedRequest, call: CallRow,
    recording: RecordingRow | None,
) -> int:
    """The action request of a `<Record>` the crash interrupted, as Twilio makes it after a
    hang-up (``Digits=hangup``); none for an empty recording. Returns 1 if queued. While the
    recording is still open (another run is finishing it), the request stays owed: the run
    that finishes the recording makes it."""
    if recording is None:
        recording = await store.get_recording(call.account_sid, request.ref,
                                              include_soft_deleted=True)
    if recording is not None and recording.status in OPEN_RECORDING_STATUSES:
        return 0
    queued = 0
    if recording is not None and recording.status == "completed":
        params = [
            *_call_info(call, "completed").request_params(),
            *record_action_params(config.recording_url(recording.sid), recording.sid,
                                  recording.duration or 0, "hangup"),
        ]
        row_id = await outbox.enqueue(
            call.sid, request.url, request.method, params,
            event=record_action_event(request.ref))
        if row_id is not None:
            log.info("recovery: call %s: the action request of <Record> %s queued", call.sid,
                     request.ref)
            queued = 1
    await forget_record_action(store, request.ref)
    return queued


async def send_final_call_status(
    outbox: Outbox, request: OwedRequest, call: CallRow, status: str, duration: int,
) -> int:
    """The ``completed`` status callback of a REST call the crash interrupted, if it asked for
    it. Returns 1 if queued."""
    events = request.data.get("events")
    if not isinstance(events, list) or "completed" not in events:
        return 0
    sent = await outbox.call_status_events_queued(call.sid)
    params = call_status_params(_call_info(call, status), sequence=sent, duration=duration)
    row_id = await outbox.enqueue(call.sid, request.url, request.method, params,
                                  event=call_status_event(call.sid, "completed"))
    if row_id is None:
        return 0
    log.info("recovery: call %s: the completed status callback queued (%s)", call.sid, status)
    return 1
