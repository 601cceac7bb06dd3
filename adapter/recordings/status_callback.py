"""What a recording reports: its source names, the ErrorCodes of an `absent` recording, the
duration as Twilio counts it, and the parameters of its status callback.

One builder for every recording status callback, whoever queues it: `<Record>`
(`adapter.interpreter.record`), `<Start><Recording>`, `<Dial record>` and the REST API's
recordings (`adapter.interpreter.call_recording`), and recovery after a crash
(`adapter.recovery`). Built from the recording's row, so recovery sends exactly what the live
call would have sent.
"""

from __future__ import annotations

from typing import Final

from adapter.db.store import RecordingRow
from adapter.interpreter.params import rfc2822

__all__ = [
    "DIAL_VERB",
    "RECORD_VERB",
    "SILENT_ERROR_CODE",
    "START_CALL_RECORDING_API",
    "START_CALL_RECORDING_TWIML",
    "UNAVAILABLE_ERROR_CODE",
    "recording_duration",
    "status_callback_params",
]

# RecordingSource of each way a recording starts (Twilio's names).
RECORD_VERB: Final = "RecordVerb"
START_CALL_RECORDING_TWIML: Final = "StartCallRecordingTwiML"
START_CALL_RECORDING_API: Final = "StartCallRecordingAPI"
DIAL_VERB: Final = "DialVerb"

# ErrorCode of an `absent` recording. 16102: "Voice Recording: Unavailable because recording is
# silent" (Twilio's error dictionary): no audio, or silence only. 12400, Twilio's "Internal
# Failure": the PBX never produced a usable file (there is no recording-specific code for it).
SILENT_ERROR_CODE: Final = 16102
UNAVAILABLE_ERROR_CODE: Final = 12400


def recording_duration(seconds: float) -> int:
    """Whole seconds as Twilio reports RecordingDuration: rounded, at least 1 for any audio."""
    return max(1, int(seconds + 0.5)) if seconds > 0 else 0


def status_callback_params(
    recording: RecordingRow, status: str, recording_url: str, *,
    duration: int | None = None, error_code: int | None = None,
) -> list[tuple[str, str]]:
    """The parameters of `recording`'s ``RecordingStatus=status`` callback.

    A `<Record>` (source `RECORD_VERB`) sends no RecordingTrack, and its row says 1 channel;
    call recordings send their track. `duration` (RecordingDuration) is given for
    ``completed``, `error_code` (ErrorCode) for ``absent``.
    """
    params = [
        ("AccountSid", recording.account_sid),
        ("CallSid", recording.call_sid),
        ("RecordingSid", recording.sid),
        ("RecordingUrl", recording_url),
        ("RecordingStatus", status),
        ("RecordingChannels", str(recording.channels)),
        ("RecordingStartTime", rfc2822(recording.start_time)),
        ("RecordingSource", recording.source),
    ]
    if recording.source != RECORD_VERB:
        params.append(("RecordingTrack", recording.track))
    if duration is not None:
        params.append(("RecordingDuration", str(duration)))
    if error_code is not None:
        params.append(("ErrorCode", str(error_code)))
    return params
