"""The driver interface between the TwiML interpreter and a PBX.

The interpreter only ever talks to a `CallControl` (one live call) and a `PbxDriver` (the
connection that hands new calls over). Each PBX package maps these operations to its own protocol
in one readable place (`adapter/pbx/asterisk/mapping.py` for Asterisk).
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from adapter.errors import AdapterError

__all__ = [
    "CallControl",
    "CallGone",
    "CallInterrupted",
    "CallRecordingHandle",
    "CallRecordingRequest",
    "ChannelGone",
    "DialRequest",
    "DialResult",
    "HangUp",
    "IncomingCall",
    "OnOriginateFailed",
    "OnOriginateRinging",
    "OnReconnected",
    "OriginateRequest",
    "PathMap",
    "PbxDriver",
    "PbxError",
    "RecordEnd",
    "RecordRequest",
    "RecordResult",
    "UtteranceRequest",
]


class PbxError(AdapterError):
    """The PBX refused or failed an operation."""


class CallGone(PbxError):
    """The call hung up (or left our control) before or during the operation."""


class ChannelGone(CallGone):
    """The PBX does not know the channel an operation named (it hung up, or never existed).

    Raised by the protocol client itself, the one place that reads the PBX's reply for it
    (Asterisk: an AMI ``Response: Error`` saying "No such channel"; FreeSWITCH: an ``api`` reply
    ``-ERR No such channel`` or ``-ERR Cannot locate session``), so no other code matches
    error text."""


class CallInterrupted(PbxError):
    """The operation was cut short because the call was redirected to new TwiML (REST ``Url``
    or ``Twiml`` on a live call); the call itself goes on."""


class RecordEnd(enum.Enum):
    """Why a `<Record>` ended."""

    FINISH_KEY = "finish-key"
    SILENCE = "silence"
    MAX_LENGTH = "max-length"
    HANGUP = "hangup"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """One `<Record>` as the PBX must perform it.

    `path` is where the adapter will find the file (a WAV), inside the shared spool.
    `silence_timeout` 0 disables silence detection; `finish_on_key` may be empty.
    """

    path: Path
    finish_on_key: str
    max_length: int
    silence_timeout: int
    beep: bool


@dataclass(frozen=True, slots=True)
class RecordResult:
    """How a `<Record>` ended. `cut_silence`: seconds of the silence that ended it which the
    PBX cut from the end of the file (Asterisk's RECORD FILE keeps only 1 s); the adapter puts
    them back for ``trim="do-not-trim"``, so the file ends with the whole timeout, as Twilio's."""

    end: RecordEnd
    digit: str | None = None
    detail: str = ""
    cut_silence: int = 0


@dataclass(frozen=True, slots=True)
class UtteranceRequest:
    """What the caller says for `<Gather input="speech">`, recorded into `path` (a WAV in the
    shared spool, no beep) until `silence` seconds of silence, one of `keys` (may be empty;
    ``dtmf speech``: every key), or `max_length` seconds. The silence counts from the start
    too: a silent caller ends it after `silence` seconds (the adapter listens again)."""

    path: Path
    silence: int
    max_length: int
    keys: str

    def as_record(self) -> RecordRequest:
        """The same as the PBX's record operation performs it (both PBXs' silence-ended
        recording: Asterisk's RECORD FILE ``s=``, FreeSWITCH's ``record`` silence hits)."""
        return RecordRequest(self.path, finish_on_key=self.keys, max_length=self.max_length,
                             silence_timeout=self.silence, beep=False)


@dataclass(frozen=True, slots=True)
class CallRecordingRequest:
    """A background recording of the call (`<Start><Recording>`), written into `directory`
    under names made from `key` (`adapter.recordings.layout`).

    `inbound` asks for the audio received from the caller, `outbound` for the audio sent to
    the caller. The driver's `CallRecordingHandle` says what the PBX writes for them; the
    adapter makes the final recording from that afterwards (`adapter.recordings.finalise`).
    """

    key: str
    directory: Path
    inbound: bool
    outbound: bool


@dataclass(frozen=True, slots=True)
class CallRecordingHandle:
    """A call recording as the PBX writes it: the PBX's id for it and its files, in one of two
    shapes.

    Track files (`of_tracks`, Asterisk's MixMonitor): one mono WAV per track asked for,
    `inbound_file` the audio received from the caller, `outbound_file` the audio sent to the
    caller, kept the same length by the PBX.

    One stereo file (`of_stereo`, FreeSWITCH's ``uuid_record``): `stereo_file` is a 2-channel
    WAV, channel 1 what the channel reads (the caller), channel 2 what it writes (the audio sent
    to the caller), sample-aligned by construction; `inbound` / `outbound` say which of the two
    the recording wants. No such file once the PBX is done means it wrote no frame at all
    (FreeSWITCH's RECORD_DISCARDED): an empty recording.

    Recovery describes what a dead adapter's PBX left with the same type (`pbx_id` empty).
    """

    pbx_id: str
    inbound: bool
    outbound: bool
    inbound_file: Path | None = None
    outbound_file: Path | None = None
    stereo_file: Path | None = None

    @classmethod
    def of_tracks(cls, pbx_id: str, inbound_file: Path | None,
                  outbound_file: Path | None) -> CallRecordingHandle:
        """One mono file per track (None: that track is not recorded)."""
        return cls(pbx_id, inbound_file is not None, outbound_file is not None,
                   inbound_file=inbound_file, outbound_file=outbound_file)

    @classmethod
    def of_stereo(cls, pbx_id: str, stereo_file: Path, *, inbound: bool,
                  outbound: bool) -> CallRecordingHandle:
        """One 2-channel file (caller on channel 1) of which the tracks asked for are wanted."""
        return cls(pbx_id, inbound, outbound, stereo_file=stereo_file)

    @property
    def files(self) -> tuple[Path, ...]:
        """The files the PBX writes for this recording (to wait for, read and remove)."""
        if self.stereo_file is not None:
            return (self.stereo_file,)
        return tuple(f for f in (self.inbound_file, self.outbound_file) if f is not None)


@dataclass(frozen=True, slots=True)
class DialRequest:
    """`<Dial>`: ring every target at once (``("number", "+1555...")`` or ``("sip", "sip:...")``)
    for `timeout` seconds and bridge the first that answers, for at most `time_limit` seconds.
    The driver sets `answered` when a callee answers (so the child call is known to be in
    progress before the `<Dial>` ends, e.g. for recovery after a crash)."""

    targets: tuple[tuple[str, str], ...]
    timeout: int
    time_limit: int
    caller_id: str | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event, compare=False)


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a `<Dial>` ended, in Twilio's words: `status` is a ``DialCallStatus`` value
    (completed, busy, no-answer, failed, canceled); `duration` the answered seconds."""

    status: str
    duration: int
    bridged: bool
    child_channel: str | None = None


@dataclass(frozen=True, slots=True)
class PathMap:
    """The shared spool folder, as the adapter sees it (`local`) and as the PBX sees it (`pbx`).

    Asterisk in a chroot or a container sees the same files under another path; a PBX on the
    same host uses one path for both.
    """

    local: Path
    pbx: PurePosixPath

    def to_pbx(self, path: Path) -> PurePosixPath:
        """`path` (in the spool) as the PBX sees it; `PbxError` if it is not in the spool.

        Worked out on the names alone (``..`` folded, not a file looked at): the PBX follows
        a link inside the spool itself, and `Path.resolve`'s lstat of every component cost
        0.7 ms of the event loop per path (4 a recorded call) on the project box."""
        local = os.path.abspath(self.local)
        target = os.path.abspath(path)
        if os.path.commonpath((local, target)) != local:
            raise PbxError(f"path escapes the spool: {path}")
        return self.pbx / PurePosixPath(*Path(os.path.relpath(target, local)).parts)


class CallControl(Protocol):
    """One live call under the adapter's control. Every operation raises `CallGone` once the
    caller has hung up (except `hangup`, which is then a no-op)."""

    @property
    def hung_up(self) -> asyncio.Event: ...

    async def answer(self) -> None: ...

    async def play(self, path: Path) -> None:
        """Play a WAV file from the shared spool to the caller."""

    async def send_digits(self, digits: str) -> None:
        """Send DTMF (`w` = half a second's pause) to the caller."""

    async def pause(self, seconds: int) -> None: ...

    def forget_keys(self) -> None:
        """A `<Gather>` begins: from now on every key the caller presses counts, also one
        pressed between two operations (while the adapter fetches the next prompt), and the
        keys pressed before do not (`adapter.pbx.heard_keys`)."""

    def pending_key(self) -> str | None:
        """The oldest key pressed since `forget_keys` that no operation has returned, or
        None."""

    async def play_until_key(self, path: Path) -> str | None:
        """Play a WAV file from the shared spool; the caller's first DTMF key (0-9, ``*``,
        ``#``) stops it (`<Gather>`'s barge-in). Returns that key, or None if it played to its
        end; a `pending_key` at once, without playing."""

    async def wait_for_key(self, seconds: int) -> str | None:
        """Wait at most `seconds` for the caller's next DTMF key (a `pending_key` at once);
        returns it, or None."""

    async def record(self, request: RecordRequest) -> RecordResult: ...

    async def record_utterance(self, request: UtteranceRequest) -> RecordResult:
        """Record one utterance (`UtteranceRequest`); ends SILENCE, FINISH_KEY (its `digit`),
        MAX_LENGTH, HANGUP or ERROR."""

    async def hangup(self) -> None: ...

    async def reject(self, *, busy: bool) -> None:
        """End a call that was never answered: busy (SIP 486 Busy Here) or rejected (603
        Decline), as the PBX signals those hang-up causes to the trunk."""

    async def terminate(self) -> None:
        """End the call now, whatever it is doing (REST ``Status=completed``)."""

    async def interrupt(self) -> None:
        """Cut short whatever the call is doing (the operation raises `CallInterrupted`) and
        return once the call is ready for new operations."""

    async def start_call_recording(self, request: CallRecordingRequest) -> CallRecordingHandle:
        """Start recording in the background; returns at once (the call goes on)."""

    async def stop_call_recording(self, handle: CallRecordingHandle) -> None:
        """Stop that recording; its files are final when this returns."""

    async def call_recording_final(self, handle: CallRecordingHandle, within: float) -> bool:
        """After the call ended: wait (at most `within` s) until the PBX has closed the files."""

    async def mute_call_recording(self, handle: CallRecordingHandle, muted: bool) -> None:
        """Write silence instead of the call's audio (pause with PauseBehavior=silence)."""

    async def dial(self, request: DialRequest) -> DialResult:
        """Call out and bridge; returns when the bridged call (or the attempt) ends. If the
        caller hangs up meanwhile it still returns the result (and `hung_up` is set)."""


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new call handed to the adapter by the PBX's dialplan."""

    to: str
    from_: str
    caller_name: str
    pbx_call_id: str
    control: CallControl
    # Set for a call the adapter originated (REST POST /Calls.json): its CallSid.
    outbound_call_sid: str | None = None


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """Place an outbound call; once answered it comes back as an `IncomingCall` carrying
    `call_sid` as `outbound_call_sid`."""

    call_sid: str
    target: tuple[str, str]  # ("number" | "sip", address)
    caller_id: str
    timeout: int


CallHandler = Callable[[IncomingCall], Awaitable[None]]
# An outbound call never answered: (CallSid, Twilio CallStatus). Its callee rings: (CallSid).
OnOriginateFailed = Callable[[str, str], Coroutine[Any, Any, None]]
OnOriginateRinging = Callable[[str], Coroutine[Any, Any, None]]


# A channel (the PBX's id of a call, `CallRow.pbx_channel`) -> True if it was still up and is
# now hung up, False if it was gone already (`PbxDriver.hang_up_channel`).
HangUp = Callable[[str], Awaitable[bool]]
# Run after the driver's PBX connection came back (`PbxDriver.on_reconnected`).
OnReconnected = Callable[[], Coroutine[Any, Any, object]]


class PbxDriver(Protocol):
    """The connection to one PBX: hands new calls over, places and cancels outbound calls,
    ends channels a previous run left up, and keeps its calls right across reconnects."""

    name: str

    @property
    def connected(self) -> bool:
        """Whether the connection to the PBX is up (logged in) right now: ``/health`` and the
        ``pbx_connected`` gauge."""

    async def start(self, on_call: CallHandler) -> None:
        """Connect to the PBX; from then on every new call is passed to `on_call` in a task."""

    async def stop(self) -> None: ...

    async def originate(self, request: OriginateRequest, on_failed: OnOriginateFailed, *,
                        on_ringing: OnOriginateRinging | None = None) -> str:
        """Start an outbound call; returns the PBX's id the channel will have (the
        `IncomingCall.pbx_call_id` once answered). When the callee starts ringing (or early
        media arrives), `on_ringing(call_sid)` runs, at most once. If it is never answered,
        `on_failed(call_sid, status)` runs with Twilio's CallStatus (busy, no-answer, failed;
        after `cancel_originate`, whatever the PBX reports: the caller knows it cancelled)."""

    async def cancel_originate(self, call_sid: str) -> bool:
        """End the attempt of an outbound call not answered yet; True if one was pending and
        the PBX accepted the cancel (`on_failed` follows). False if there is none (any more)."""

    async def hang_up_channel(self, channel: str) -> bool:
        """End a channel a previous run of the adapter left up (`adapter.recovery`); `channel`
        is the PBX's id of the call (`IncomingCall.pbx_call_id`, `CallRow.pbx_channel`), which
        the PBX never gives to another channel. True if it was up and is now hung up; False if
        it was gone already (or is not an id of this PBX). A `HangUp`."""

    def on_reconnected(self, handler: OnReconnected) -> None:
        """Run `handler()` after every reconnect of the driver's PBX connection, once each live
        call whose channel went meanwhile (its hang-up event lost with the connection) has been
        marked hung up, which ends its session (`CallGone`)."""
