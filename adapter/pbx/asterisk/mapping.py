"""TwiML operations → AsyncAGI commands on Asterisk, in one readable place.

- answer: ``ANSWER``
- play (`<Say>`, `<Play>`): ``STREAM FILE <file without .wav> ""``
- send_digits (`<Play digits>`): ``EXEC SendDTMF <digits>``
- pause (`<Pause>`): ``EXEC Wait <seconds>``
- record (`<Record>`):
  ``RECORD FILE <file> wav "<finishOnKey>" <maxLength ms> [BEEP] [s=<timeout>]``
- hangup (`<Hangup>`, and the end of the document): ``HANGUP``

Why ``RECORD FILE`` and not the ``Record()`` application (lab notes §5.3-5.4): RECORD FILE reports
which key ended the recording (Twilio's ``Digits``), keeps the file when the caller hangs up, and
takes any set of stop keys; ``Record()`` reports no digit, deletes the file on hang-up without
``k``, and only stops on ``#`` by default.

How a RECORD FILE reply maps to the way the recording ended:

| reply                              | meaning                                                 |
|------------------------------------|---------------------------------------------------------|
| ``200 result=<ascii> (dtmf)``      | a finishOnKey digit: ``chr(result)``                    |
| ``200 result=<n> (timeout)``       | silence (``s=``) or maxLength: told apart by elapsed time |
| ``200 result=-1 (hangup)``         | the caller hung up (or the channel was redirected)      |
| ``200 result=-1 (writefile)``      | Asterisk could not write the file                       |
"""

from __future__ import annotations

from pathlib import PurePosixPath

from adapter.pbx.asterisk.agi import AgiReply
from adapter.pbx.asterisk.escape import agi_digits, agi_dtmf, agi_int, agi_path
from adapter.pbx.base import RecordEnd, RecordResult

__all__ = [
    "ANSWER",
    "HANGUP",
    "record_file",
    "record_result",
    "send_dtmf",
    "stream_file",
    "wait",
]

ANSWER = "ANSWER"
HANGUP = "HANGUP"
SAMPLE_RATE = 8000  # RECORD FILE ... wav writes 8 kHz 16-bit mono
MAX_RECORD_SECONDS = 4 * 3600


def _without_wav(path: PurePosixPath) -> PurePosixPath:
    return path.with_suffix("") if path.suffix == ".wav" else path


def stream_file(path: PurePosixPath, *, root: PurePosixPath) -> str:
    return f'STREAM FILE {agi_path(_without_wav(path), root=root)} ""'


def send_dtmf(digits: str) -> str:
    return f"EXEC SendDTMF {agi_dtmf(digits)}"


def wait(seconds: int) -> str:
    return f"EXEC Wait {agi_int(seconds, low=0, high=MAX_RECORD_SECONDS, field='Pause length')}"


def record_file(
    path: PurePosixPath,
    *,
    root: PurePosixPath,
    finish_on_key: str,
    max_length: int,
    silence_timeout: int,
    beep: bool,
) -> str:
    """``RECORD FILE``: maxLength in ms; ``s=`` only when silence detection is on."""
    target = agi_path(_without_wav(path), root=root)
    limit = agi_int(max_length, low=1, high=MAX_RECORD_SECONDS, field="maxLength")
    parts = ["RECORD FILE", target, "wav", agi_digits(finish_on_key), f"{limit}000"]
    if beep:
        parts.append("BEEP")
    if silence_timeout:
        parts.append(f"s={agi_int(silence_timeout, low=1, high=3600, field='timeout')}")
    return " ".join(parts)


def record_result(reply: AgiReply, *, max_length: int, elapsed: float) -> RecordResult:
    """How the recording ended, from RECORD FILE's reply (see the table above).

    `elapsed` is the wall time the command took: RECORD FILE's max time runs from the start of
    the beep, so ``endpos`` (samples written) falls short of maxLength and cannot tell.
    """
    if reply.hung_up:
        return RecordResult(RecordEnd.HANGUP, detail=reply.text)
    if not reply.ok or reply.result is None or reply.result < 0:
        return RecordResult(RecordEnd.ERROR, detail=reply.text)
    if reply.data == "dtmf":
        return RecordResult(RecordEnd.FINISH_KEY, digit=chr(reply.result), detail=reply.text)
    # "(timeout)": the result number is garbage (lab notes gotcha 4).
    if elapsed >= max_length - 0.25:
        return RecordResult(RecordEnd.MAX_LENGTH, detail=reply.text)
    return RecordResult(RecordEnd.SILENCE, detail=reply.text)
