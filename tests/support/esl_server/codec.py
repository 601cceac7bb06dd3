"""The ESL wire as FreeSWITCH 1.10.12 writes it: command replies, api responses, event frames
(URL-encoded as switch_url_encode does), the disconnect notice, the prolog of an event, and
the lab transcripts' reference frames (byte for byte, from ``transcripts/*.esl``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

CORE_UUID = "7544d75d-024d-4794-b039-831a06c51cee"
HOSTNAME = "vm"
IPV4 = "192.0.2.2"
IPV6 = "fd00::2"

# ``api status`` of the lab's FreeSWITCH (transcript t0), byte for byte.
STATUS_BODY = (
    "UP 0 years, 0 days, 0 hours, 0 minutes, 1 second, 770 milliseconds, 653 microseconds\n"
    "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
    "0 session(s) since startup\n"
    "0 session(s) - peak 0, last 5min 0 \n"
    "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
    "1000 session(s) max\n"
    "min idle cpu 0.00/100.00\n"
    "Current Stack Size/Max 240K/8192K\n"
)
# mod_commands' SESS_REC_SYNTAX (transcript t1: the -USAGE reply).
SESS_REC_SYNTAX = "<uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]"

# What ``myevents`` subscribes (mod_event_socket.c): no RECORD_START/RECORD_STOP (lab notes §8.10).
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
    "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
})

# Event-Calling-File / -Function / -Line-Number as in the transcripts.
CALLING = {
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "RECORD_START": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "767"),
    "RECORD_STOP": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "1030"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c",
                                "switch_core_session_reporting_state", "943"),
}

# switch_url_encode(): these and control characters become %XX; bytes >= 0x80 stay raw.
_URL_UNSAFE = frozenset(b'\r\n "#%&+:;<=>?@[\\]^`{|}')

Lines = list[tuple[str, str]]
Headers = Sequence[tuple[str, str]]


def fs_url_encode(value: str) -> bytes:
    out = bytearray()
    for byte in value.encode("utf-8"):
        if byte >= 0x80 or (31 < byte < 127 and byte not in _URL_UNSAFE):
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def header_lines(lines: Headers, *, encode: bool) -> bytes:
    return b"".join(
        name.encode() + b": " + (fs_url_encode(value) if encode else value.encode()) + b"\n"
        for name, value in lines
    )


def command_reply(text: str) -> bytes:
    return b"Content-Type: command/reply\nReply-Text: " + text.encode() + b"\n\n"


def api_response(body: str) -> bytes:
    data = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def event_frame(lines: Headers) -> bytes:
    body = header_lines(lines, encode=True) + b"\n"
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


def disconnect_notice(uuid: str, channel_name: str, *, linger: bool) -> bytes:
    disposition = "linger" if linger else "disconnect"
    lines = [("Content-Type", "text/disconnect-notice"), ("Controlled-Session-UUID", uuid),
             ("Content-Disposition", disposition), ("Channel-Name", channel_name),
             ("Linger-Time", "-1" if linger else "0"), ("Content-Length", "0")]
    return header_lines(lines, encode=False) + b"\n"


def _dates(timestamp_us: int) -> Lines:
    moment = datetime.fromtimestamp(timestamp_us / 1e6, UTC)
    return [
        ("Event-Date-Local", moment.strftime("%Y-%m-%d %H:%M:%S")),
        ("Event-Date-GMT", moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        ("Event-Date-Timestamp", str(timestamp_us)),
    ]


def core_prolog(name: str, timestamp_us: int, sequence: int,
                 calling: tuple[str, str, str]) -> Lines:
    """The headers switch_event_prep_for_delivery gives an event with no channel."""
    return [
        ("Event-Name", name), ("Core-UUID", CORE_UUID), ("FreeSWITCH-Hostname", HOSTNAME),
        ("FreeSWITCH-Switchname", HOSTNAME), ("FreeSWITCH-IPv4", IPV4),
        ("FreeSWITCH-IPv6", IPV6), *_dates(timestamp_us),
        ("Event-Calling-File", calling[0]), ("Event-Calling-Function", calling[1]),
        ("Event-Calling-Line-Number", calling[2]), ("Event-Sequence", str(sequence)),
    ]


def event_frame_with_body(lines: Headers, body: str) -> bytes:
    """switch_event_serialize with a body: the headers, ``Content-Length``, a blank line, then
    the body (no line after it); wrapped in a ``text/event-plain`` frame."""
    data = body.encode()
    inner = header_lines(lines, encode=True) + b"Content-Length: %d\n\n" % len(data) + data
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


def switch_true(value: str | None) -> bool:
    if not value:
        return False
    if value.lower() in ("yes", "on", "true", "t", "enabled", "enable", "allow", "active"):
        return True
    return value.isdigit() and int(value) != 0


# The transcripts live outside the repository (../shared/transcripts/freeswitch/); these two
# frames are copied from them byte for byte.
_TRANSCRIPTS = Path(__file__).parent / "transcripts"
# raw_t4_outbound.txt: the reply to ``connect`` (one header-only frame, 105 headers).
TRANSCRIPT_CONNECT_REPLY = (_TRANSCRIPTS / "connect_reply.esl").read_bytes()
# raw_t4_outbound.txt: CHANNEL_EXECUTE_COMPLETE of ``answer`` (Event-Sequence 942).
TRANSCRIPT_ANSWER_COMPLETE = (_TRANSCRIPTS / "answer_complete.esl").read_bytes()
