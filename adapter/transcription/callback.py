"""The transcribeCallback's parameters, Twilio's names, built from the rows alone (so a job
finished after a restart sends exactly what the live one would have)."""

from __future__ import annotations

from typing import Final

from adapter.db.store import CallRow
from adapter.db.transcriptions import TranscriptionRow
from adapter.interpreter.params import API_VERSION

__all__ = ["TRANSCRIBE_CALLBACK_METHOD", "transcribe_callback_params"]

# Twilio makes the transcribeCallback request with POST; <Record> has no attribute to change it.
TRANSCRIBE_CALLBACK_METHOD: Final = "POST"


def transcribe_callback_params(row: TranscriptionRow, call: CallRow | None, *,
                               transcription_url: str, recording_url: str
                               ) -> list[tuple[str, str]]:
    """TranscriptionSid, TranscriptionText, TranscriptionStatus, TranscriptionUrl, RecordingSid,
    RecordingUrl and the call's standard parameters. A failed transcription sends an empty
    TranscriptionText; ForwardedFrom is empty (the PBXs give the adapter no such number)."""
    params = [
        ("TranscriptionSid", row.sid),
        ("TranscriptionText", row.transcription_text or ""),
        ("TranscriptionStatus", row.status),
        ("TranscriptionUrl", transcription_url),
        ("RecordingSid", row.recording_sid),
        ("RecordingUrl", recording_url),
        ("CallSid", row.call_sid),
        ("AccountSid", row.account_sid),
        ("ApiVersion", API_VERSION),
    ]
    if call is not None:
        params += [("From", call.from_), ("To", call.to), ("CallStatus", call.status),
                   ("Direction", call.direction)]
    params.append(("ForwardedFrom", ""))
    return params
