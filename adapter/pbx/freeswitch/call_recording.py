"""`<Start><Recording>` on FreeSWITCH: the ``uuid_record`` recordings of one call.

Each recording is ONE ``uuid_record`` of the channel into a 2-channel WAV
(``RECORD_STEREO=true``, ``RECORD_PRE_BUFFER_FRAMES=0``, `mapping.CALL_RECORDING_VARIABLES`):
channel 1 what the channel reads (the caller), channel 2 what it writes. The handle says so
(`CallRecordingHandle.of_stereo`), and the finaliser makes the final recording from the file as
it is (`adapter.recordings.finalise`): nothing is split into tracks here. Why one stereo file
rather than a ``RECORD_READ_ONLY`` and a ``RECORD_WRITE_ONLY`` recording (lab notes §7.2,
§8.7): the two directions of one media bug are sample-aligned by construction (the lab's stereo
file was 2.00 s on both channels), whereas the write-only recording of the same 2 s came out
1.78 s, so two files would not line up when interleaved for ``dual``; and one recording is one
``mask``, one ``stop`` and one RECORD_STOP instead of two of each, never half muted.

A file is final when its RECORD_STOP has arrived: FreeSWITCH fires it after closing the file
(``switch_ivr_async.c``, ``record_callback``), on the call's outbound socket, where it is
subscribed explicitly (``myevents`` leaves RECORD_* out, §8.10). The ``api`` reply comes on the
same socket (or, once it closed, on the inbound connection), and whether before or after the
event is FreeSWITCH's business: the event is awaited, never assumed.
Recordings are matched on ``Record-File-Path``, the absolute path we chose (§8.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from adapter.pbx.base import (
    CallGone,
    CallRecordingHandle,
    CallRecordingRequest,
    ChannelGone,
    PathMap,
    PbxError,
)
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.recordings import layout
from adapter.recordings.media import wav_is_final

__all__ = ["STOP_WAIT", "CallRecordings"]

log = logging.getLogger(__name__)

# How long stop_call_recording waits for RECORD_STOP after FreeSWITCH accepted the stop.
STOP_WAIT = 10.0
_NOT_RECORDING = "-ERR Cannot stop record session"
# The headers of a recording's RECORD_STOP that are kept (`CallRecordings.final` logs them).
_STOP_FIELDS = ("Event-Name", "Record-File-Path", "variable_record_ms",
                "Record-Completion-Cause")

Api = Callable[[str], Awaitable[str]]


@dataclass(slots=True)
class _Recording:
    handle: CallRecordingHandle
    pbx_path: PurePosixPath
    stereo_file: Path  # the same file, as the adapter sees it
    stopped: asyncio.Future[EslEvent | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    started: bool = False  # its RECORD_START came


class CallRecordings:
    """The background recordings of one channel (every method runs in the asyncio loop)."""

    def __init__(self, uuid: str, *, spool: PathMap, api: Api, hung_up: asyncio.Event) -> None:
        self.uuid = uuid
        self._spool = spool
        self._api = api
        self._hung_up = hung_up
        self._by_path: dict[str, _Recording] = {}
        self._by_id: dict[str, _Recording] = {}

    # --- events -----------------------------------------------------------------------------

    def on_event(self, event: EslEvent) -> None:
        """RECORD_START / RECORD_STOP of this channel (already checked: our Unique-ID)."""
        recording = self._by_path.get(event.get("Record-File-Path"))
        if recording is None:
            return  # a <Record>, or a recording someone else started
        if event.name == "RECORD_START":
            recording.started = True
        elif event.name == "RECORD_STOP" and not recording.stopped.done():
            # Only what `final` reads: the whole event (some 80 headers) would stay for the
            # rest of the call (issue #13 row 4).
            kept = {name: event.headers[name] for name in _STOP_FIELDS if name in event.headers}
            recording.stopped.set_result(EslEvent(kept))

    def on_closed(self) -> None:
        """The call's socket closed: no RECORD_STOP will come any more."""
        for recording in self._by_path.values():
            if not recording.stopped.done():
                recording.stopped.set_result(None)

    # --- operations -------------------------------------------------------------------------

    async def start(self, request: CallRecordingRequest) -> CallRecordingHandle:
        if not (request.inbound or request.outbound):
            raise ValueError("a call recording needs at least one track")
        if self._hung_up.is_set():
            raise CallGone(f"{self.uuid} has hung up")
        # The adapter makes the folder (FreeSWITCH would too, §7.5), as on Asterisk; see
        # docs/freeswitch.md on the spool's permissions.
        request.directory.mkdir(parents=True, exist_ok=True)
        stereo = layout.stereo_file(request.directory, request.key)
        pbx_path = self._spool.to_pbx(stereo)
        handle = CallRecordingHandle.of_stereo(str(pbx_path), stereo, inbound=request.inbound,
                                               outbound=request.outbound)
        command = mapping.uuid_record_start(self.uuid, pbx_path, root=self._spool.pbx)
        recording = _Recording(handle, pbx_path, stereo)
        # Registered before the command: RECORD_START/STOP may come before the api reply.
        self._by_path[str(pbx_path)] = recording
        self._by_id[handle.pbx_id] = recording
        try:
            reply = await self._api(command)
        except PbxError:
            self._forget(recording)
            raise
        if not reply.startswith("+OK"):
            self._forget(recording)
            if self._hung_up.is_set():
                raise CallGone(f"{self.uuid}: uuid_record start: {reply.strip()}")
            raise PbxError(f"{self.uuid}: FreeSWITCH refused to record {pbx_path}: "
                           f"{reply.strip()}")
        log.debug("call %s: recording %s", self.uuid, pbx_path)
        return handle

    async def stop(self, handle: CallRecordingHandle) -> None:
        """``uuid_record stop``; returns once RECORD_STOP came (FreeSWITCH closed the file)."""
        recording = self._recording(handle)
        if not recording.stopped.done():
            command = mapping.uuid_record_stop(self.uuid, recording.pbx_path,
                                               root=self._spool.pbx)
            reply: str | None
            try:
                reply = await self._api(command)
            except ChannelGone:
                reply = None  # the recording ended with the channel
            except PbxError:
                if not self._hung_up.is_set():
                    raise
                reply = "-ERR the call has hung up"
            if reply is not None and not reply.startswith("+OK") and not (
                reply.startswith(_NOT_RECORDING) or self._hung_up.is_set()
            ):
                raise PbxError(f"{self.uuid}: uuid_record stop {recording.pbx_path}: "
                               f"{reply.strip()}")
            # "+OK": RECORD_STOP follows. Otherwise the recording ended by itself (hang-up):
            # its RECORD_STOP is on the way or already here.
        if not await self.final(handle, STOP_WAIT):
            raise PbxError(f"{self.uuid}: {recording.pbx_path} was not closed within "
                           f"{STOP_WAIT:.0f} s")

    async def final(self, handle: CallRecordingHandle, within: float) -> bool:
        """Wait (at most `within` s) for FreeSWITCH to close the file (its RECORD_STOP)."""
        recording = self._recording(handle)
        try:
            stop = await asyncio.wait_for(asyncio.shield(recording.stopped), within)
        except TimeoutError:
            return False
        if stop is None and not await asyncio.to_thread(self._closed_anyway, recording):
            log.error("call %s: the socket closed before RECORD_STOP of %s and the file is not "
                      "final", self.uuid, recording.pbx_path)
            return False
        if stop is not None:
            # No file after its RECORD_STOP: FreeSWITCH wrote no frame (RECORD_DISCARDED), an
            # empty recording.
            log.debug("%s closed (record_ms=%s, cause %s)", recording.pbx_path,
                      stop.variable("record_ms"), stop.get("Record-Completion-Cause"))
        self._by_path.pop(str(recording.pbx_path), None)  # no event of it will come any more
        return True

    async def mute(self, handle: CallRecordingHandle, muted: bool) -> None:
        recording = self._recording(handle)
        command = mapping.uuid_record_mask(self.uuid, recording.pbx_path, root=self._spool.pbx,
                                           masked=muted)
        reply = await self._api(command)
        if reply.startswith("+OK"):
            return
        if self._hung_up.is_set():
            raise CallGone(f"{self.uuid}: uuid_record {'mask' if muted else 'unmask'}: "
                           f"{reply.strip()}")
        raise PbxError(f"{self.uuid}: uuid_record {'mask' if muted else 'unmask'} "
                       f"{recording.pbx_path}: {reply.strip()}")

    # --- helpers ----------------------------------------------------------------------------

    def _recording(self, handle: CallRecordingHandle) -> _Recording:
        recording = self._by_id.get(handle.pbx_id)
        if recording is None:
            raise PbxError(f"{self.uuid}: no call recording {handle.pbx_id}")
        return recording

    def _forget(self, recording: _Recording) -> None:
        """A recording that never started."""
        self._by_path.pop(str(recording.pbx_path), None)
        self._by_id.pop(recording.handle.pbx_id, None)

    @staticmethod
    def _closed_anyway(recording: _Recording) -> bool:
        return not recording.stereo_file.exists() or wav_is_final(recording.stereo_file)

