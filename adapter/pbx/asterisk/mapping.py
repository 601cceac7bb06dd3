"""TwiML operations → AsyncAGI commands on Asterisk, in one readable place.

- answer: ``ANSWER``
- play (`<Say>`, `<Play>`): ``STREAM FILE <file without .wav> ""``
- send_digits (`<Play digits>`): ``EXEC SendDTMF <digits>``
- pause (`<Pause>`): ``EXEC Wait <seconds>``
- play_until_key (`<Gather>`'s `<Say>`, `<Play>`): ``STREAM FILE <file> "0123456789*#"``; the
  reply's ``result`` is the ASCII code of the key that stopped it (0: played to its end)
- wait_for_key (`<Gather>`'s `<Pause>` and its ``timeout``): ``WAIT FOR DIGIT <ms>``; ``result``
  the key's ASCII code (0: none came). AsyncAGI reads and drops the frames that arrive between
  two commands, but every key the caller presses is also a ``DTMFEnd`` event
  (``Direction: Received``; read class ``dtmf``) before the reply of the command it ended:
  the keys of a `<Gather>` come from those (`key_heard`, `adapter.pbx.heard_keys`), so one
  pressed while the adapter fetches or synthesises the next prompt counts.
- record (`<Record>`):
  ``RECORD FILE <file> wav "<finishOnKey>" <maxLength ms> [BEEP] [s=<timeout>]``
- record_utterance (`<Gather input="speech">`): the same without BEEP, ``s=<speech silence>``,
  escape digits ``""`` (speech) or ``"0123456789*#"`` (dtmf speech); s= counts the silence
  from the start too, so a silent caller ends it after that many seconds
- dial (`<Dial>`): ``EXEC Dial <target>&<target>,<timeout>,o(<callerId>)S(<timeLimit>)``, each
  target made from the configured template (``asterisk.dial_number``, ``asterisk.dial_sip``);
  how it ended comes from the ``DialEnd`` events (``DialStatus``) and the time of the answer.
- hangup (`<Hangup>`, and the end of the document): ``HANGUP``
- originate (REST ``POST /Calls.json``): ``Action: Originate`` of the target (the Dial
  template) into ``[twiml-outbound]``, ``Async: true``, ``Variable: TWIML_CALL_SID=<CallSid>``,
  ``ChannelId: <CallSid>`` (the channel's Uniqueid, known before the answer: recovery can hang
  it up); the answered call enters AsyncAGI with that SID; ``OriginateResponse`` ``Reason`` says why
  an unanswered one failed (3 no-answer, 5 busy, others failed).

And over AMI (not AGI), so they run beside whatever the channel is doing:

- start_call_recording (`<Start><Recording>`):
  ``Action: MixMonitor`` with ``Options: i(<id variable>)r(<inbound.wav>)t(<outbound.wav>)``
  (only the tracks asked for; no ``File``, so no mixed file). ``r()`` is the audio received from
  the caller, ``t()`` the audio sent to the caller (the dialled party when bridged); Asterisk
  keeps both the same length. The Response carries the ``MixMonitorID`` because of ``i()``.
- mute_call_recording (REST pause, PauseBehavior=silence): ``Action: MixMonitorMute`` with
  ``Direction: both``, ``State: 1`` (0 to resume) and the ``MixMonitorID``; Asterisk writes
  silence meanwhile, so the file keeps running in time.
- stop_call_recording (`<Stop><Recording>`): ``Action: StopMixMonitor`` with that
  ``MixMonitorID``; the files are closed when its Response arrives. At hang-up Asterisk closes
  them itself a few ms after the ``Hangup`` event, with no event of its own: the adapter waits
  for their WAV headers to become final.
- interrupt (REST redirect to new TwiML): ``Action: Redirect`` to ``s,1`` of ``[twiml-resume]``;
  the running AGI command ends and the channel enters AsyncAGI again with the resume marker.
- terminate (REST ``Status=completed``), cancel_originate, recovery's hang-up of a leftover
  channel: ``Action: Hangup`` with ``Cause: 16`` (normal clearing), by channel name or Uniqueid.
- after an AMI re-login: ``Action: Getvar`` of ``UNIQUEID`` on each call's channel; "No such
  channel" (`ChannelGone`) means it hung up while the connection was down.

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

When silence ends it, RECORD FILE cuts the silence from the file but its first second
(res_agi.c ``handle_recordfile``: ``ast_stream_rewind(fs, silence - 1000)``, then
``ast_truncstream``; 8 samples per ms, so exactly ``timeout - 1`` s of an 8 kHz ``wav``).
`record_result` reports that as ``cut_silence``; for ``trim="do-not-trim"`` the adapter appends
as much digital silence to its copy, so the file ends with the whole timeout, as Twilio's does.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath

from adapter.addresses import CALLER_ID
from adapter.pbx import dial_targets
from adapter.pbx.asterisk.agi import AgiReply
from adapter.pbx.asterisk.ami import AmiMessage
from adapter.pbx.asterisk.escape import (
    UnsafeValue,
    agi_digits,
    agi_dtmf,
    agi_int,
    agi_path,
    ami_channel,
    ami_header_value,
    dial_string,
)
from adapter.pbx.base import RecordEnd, RecordResult
from adapter.pbx.heard_keys import GATHER_KEYS

__all__ = [
    "ANSWER",
    "GATHER_KEYS",
    "HANGUP",
    "getvar",
    "hangup_channel",
    "key_pressed",
    "mixmonitor",
    "mute_mixmonitor",
    "originate",
    "record_file",
    "record_result",
    "redirect",
    "reject",
    "send_dtmf",
    "stop_mixmonitor",
    "stream_file",
    "stream_file_until_key",
    "wait",
    "wait_for_digit",
]

ANSWER = "ANSWER"
HANGUP = "HANGUP"
# <Reject>: Hangup() with the Q.850 cause; chan_pjsip answers an unanswered INVITE with the
# SIP status of that cause: 17 USER_BUSY → 486 Busy Here, but 21 CALL_REJECTED → 403 Forbidden
# (measured, tests/sip/test_sip_asterisk.py: chan_pjsip maps no cause to 603 Decline). So a
# PJSIP channel is rejected with chan_pjsip's PJSIPHangup and the SIP status itself, as Twilio
# answers (486 Busy Here, 603 Decline); any other channel (Local, IAX2...) with the cause.
REJECT_BUSY = "EXEC Hangup 17"
REJECT_DECLINED = "EXEC Hangup 21"
PJSIP_REJECT_BUSY = "EXEC PJSIPHangup 486"
PJSIP_REJECT_DECLINED = "EXEC PJSIPHangup 603"


def reject(channel: str, *, busy: bool) -> str:
    """The AGI command that ends unanswered `channel` as `<Reject reason>` asks."""
    if channel.startswith("PJSIP/"):
        return PJSIP_REJECT_BUSY if busy else PJSIP_REJECT_DECLINED
    return REJECT_BUSY if busy else REJECT_DECLINED
SAMPLE_RATE = 8000  # RECORD FILE ... wav writes 8 kHz 16-bit mono
KEPT_SILENCE = 1  # seconds of the silence that ended a RECORD FILE it leaves in the file
MAX_RECORD_SECONDS = 4 * 3600


def _without_wav(path: PurePosixPath) -> PurePosixPath:
    return path.with_suffix("") if path.suffix == ".wav" else path


def stream_file(path: PurePosixPath, *, root: PurePosixPath) -> str:
    return f'STREAM FILE {agi_path(_without_wav(path), root=root)} ""'


def stream_file_until_key(path: PurePosixPath, *, root: PurePosixPath) -> str:
    return f"STREAM FILE {agi_path(_without_wav(path), root=root)} {agi_digits(GATHER_KEYS)}"


def wait_for_digit(seconds: int) -> str:
    ms = agi_int(seconds, low=1, high=MAX_RECORD_SECONDS, field="timeout")
    return f"WAIT FOR DIGIT {ms}000"


def key_pressed(reply: AgiReply) -> str | None:
    """The key a STREAM FILE with escape digits or a WAIT FOR DIGIT reply names, or None
    (``result=0``: none; ``-1``: it failed)."""
    if not reply.ok or reply.result is None or reply.result <= 0:
        return None
    key = chr(reply.result)
    return key if key in GATHER_KEYS else None


def key_heard(event: AmiMessage) -> str | None:
    """The key a ``DTMFEnd`` event reports the caller pressed, or None (a key the channel
    sent, e.g. SendDTMF's; not a `<Gather>` key)."""
    if event.get("Direction") != "Received":
        return None
    key = event.get("Digit") or ""
    return key if len(key) == 1 and key in GATHER_KEYS else None


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


def record_result(reply: AgiReply, *, max_length: int, elapsed: float,
                  silence_timeout: int) -> RecordResult:
    """How the recording ended, from RECORD FILE's reply (see the table above).

    `elapsed` is the wall time the command took: RECORD FILE's max time runs from the start of
    the beep, so ``endpos`` (samples written) falls short of maxLength and cannot tell.
    Silence: ``cut_silence`` is what RECORD FILE cut of the `silence_timeout` (docstring above).
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
    return RecordResult(RecordEnd.SILENCE, detail=reply.text,
                        cut_silence=max(0, silence_timeout - KEPT_SILENCE))


_ID_VARIABLE_RE = re.compile(r"TWIML_MM_[A-Za-z0-9]{1,40}")
_MIXMONITOR_ID_RE = re.compile(r"0x[0-9a-fA-F]{1,16}")


def mixmonitor(
    channel: str,
    *,
    id_variable: str,
    inbound: PurePosixPath | None,
    outbound: PurePosixPath | None,
    root: PurePosixPath,
) -> dict[str, str]:
    """The AMI ``MixMonitor`` action for a background recording of `channel`."""
    if not _ID_VARIABLE_RE.fullmatch(id_variable):
        raise UnsafeValue(f"MixMonitor id variable {id_variable!r} is not TWIML_MM_<alnum>")
    if inbound is None and outbound is None:
        raise ValueError("a call recording needs at least one track")
    options = f"i({id_variable})"
    if inbound is not None:
        options += f"r({agi_path(inbound, root=root)})"
    if outbound is not None:
        options += f"t({agi_path(outbound, root=root)})"
    return {"Action": "MixMonitor", "Channel": ami_channel(channel), "Options": options}


def stop_mixmonitor(channel: str, mixmonitor_id: str) -> dict[str, str]:
    if not _MIXMONITOR_ID_RE.fullmatch(mixmonitor_id):
        raise UnsafeValue(f"MixMonitorID {mixmonitor_id!r} is not a 0x… id")
    return {"Action": "StopMixMonitor", "Channel": ami_channel(channel),
            "MixMonitorID": mixmonitor_id}


# DialEnd's DialStatus → Twilio's DialCallStatus.
DIAL_STATUS = {
    "ANSWER": "completed",
    "BUSY": "busy",
    "NOANSWER": "no-answer",
    "CANCEL": "canceled",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
    "DONTCALL": "failed",
    "TORTURE": "failed",
    "INVALIDARGS": "failed",
}


# One endpoint to ring (`adapter.pbx.dial_targets`), checked by `escape.dial_string`.
dial_target = functools.partial(dial_targets.dial_target, endpoint=dial_string,
                                unsafe=UnsafeValue)


def dial(targets: list[str], *, timeout: int, time_limit: int, caller_id: str | None) -> str:
    """``EXEC Dial``: targets ring together (``&``); ``o()`` caller ID, ``S()`` time limit.

    Raises UnsafeValue for a target outside the Dial-string set, and for a command too long
    for the AMI line that carries it (more targets than Asterisk can read in one line).
    """
    if not targets:
        raise ValueError("Dial needs at least one target")
    for target in targets:
        dial_string(target)
    options = ""
    if caller_id is not None:
        if not CALLER_ID.fullmatch(caller_id):
            raise UnsafeValue(f"callerId {caller_id!r} has characters outside A-Za-z0-9+_.-")
        options += f"o({caller_id})"
    options += f"S({agi_int(time_limit, low=1, high=86400, field='timeLimit')})"
    seconds = agi_int(timeout, low=1, high=600, field="timeout")
    command = f"EXEC Dial {'&'.join(targets)},{seconds},{options}"
    return ami_header_value(command, field="Command")


def mute_mixmonitor(channel: str, mixmonitor_id: str, muted: bool) -> dict[str, str]:
    if not _MIXMONITOR_ID_RE.fullmatch(mixmonitor_id):
        raise UnsafeValue(f"MixMonitorID {mixmonitor_id!r} is not a 0x… id")
    return {"Action": "MixMonitorMute", "Channel": ami_channel(channel), "Direction": "both",
            "State": "1" if muted else "0", "MixMonitorID": mixmonitor_id}


ORIGINATE_CONTEXT = "twiml-outbound"
_CALL_SID_RE = re.compile(r"CA[0-9a-f]{32}")
# OriginateResponse Reason → Twilio CallStatus for a call that was never answered.
ORIGINATE_FAILURE = {"3": "no-answer", "5": "busy"}


def hangup_channel(channel: str) -> dict[str, str]:
    """AMI ``Hangup`` (cause 16, normal clearing) of a channel, by name or Uniqueid: a REST
    call cancelled while it rings, a channel recovery finds still up, or a call ended now
    (REST ``Status=completed``: it works even while an AGI command runs)."""
    return {"Action": "Hangup", "Channel": ami_channel(channel), "Cause": "16"}


def redirect(channel: str, context: str) -> dict[str, str]:
    """AMI ``Redirect`` of a channel to ``s,1`` of `context`: out of AsyncAGI, ending the AGI
    command it runs (a REST redirect to new TwiML goes through ``[twiml-resume]``)."""
    return {"Action": "Redirect", "Channel": ami_channel(channel), "Context": context,
            "Exten": "s", "Priority": "1"}


def getvar(channel: str, variable: str) -> dict[str, str]:
    """AMI ``Getvar`` of a channel variable: "No such channel" (`ChannelGone`) tells that the
    channel is gone (the check of the calls after an AMI re-login)."""
    return {"Action": "Getvar", "Channel": ami_channel(channel), "Variable": variable}


def originate(call_sid: str, target: str, *, caller_id: str, timeout: int,
              action_id: str) -> dict[str, str]:
    """The AMI ``Originate`` of an outbound REST call (`target` from `dial_target`)."""
    if not _CALL_SID_RE.fullmatch(call_sid):
        raise UnsafeValue(f"CallSid {call_sid!r} is not CA + 32 hex digits")
    if not CALLER_ID.fullmatch(caller_id):
        raise UnsafeValue(f"From {caller_id!r} has characters outside A-Za-z0-9+_.-")
    seconds = agi_int(timeout, low=1, high=600, field="Timeout")
    return {
        "Action": "Originate", "Channel": target, "Context": ORIGINATE_CONTEXT, "Exten": "s",
        "Priority": "1", "CallerID": caller_id, "Timeout": f"{seconds}000", "Async": "true",
        "Variable": f"TWIML_CALL_SID={call_sid}", "ActionID": action_id,
        # The new channel's Uniqueid is the CallSid: known before it is answered, so a restarted
        # adapter can hang it up (adapter/recovery.py), and greppable in Asterisk's logs.
        "ChannelId": call_sid,
    }
