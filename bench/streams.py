"""The recorded recording-event streams the event-path benchmark (row 1) replays, as bytes.

AMI (shapes from the Asterisk lab notes §5): per call, Newchannel, Newstate, AsyncAGIStart (its
URL-encoded ``Env``), MixMonitorStart, the AsyncAGIExec answering the call's RECORD FILE
(URL-encoded ``Result``, our ``CommandId``), MixMonitorStop, Hangup, AsyncAGIEnd: 8 events,
`CONCURRENT` calls interleaved: what a session without an event filter reads of those calls,
VarSet and Newexten left out. (The adapter's own session now asks Asterisk for only the events
it reads, `adapter.pbx.asterisk.ami.event_filter`, which would also drop Newchannel and the
MixMonitor events; the stream keeps them, so the row still compares the same bytes through
panoramisk and through the adapter.)

ESL (the fake FreeSWITCH of tests/support/esl_server, which renders the lab transcripts' frames:
70-130 URL-encoded headers each): per recording, on the call's own socket, the execute /
execute-complete pairs around ``uuid_record``, RECORD_START, MEDIA_BUG_START, RECORD_STOP,
MEDIA_BUG_STOP: `ESL_EVENTS_PER_RECORDING` events.
"""

from __future__ import annotations

import sys
import uuid as uuid_module
from pathlib import Path, PurePosixPath
from urllib.parse import quote

__all__ = ["AMI_EVENTS_PER_CALL", "CONCURRENT", "ESL_EVENTS_PER_RECORDING", "ami_stream",
           "call_uuid", "esl_call_events", "recording_path"]

AMI_EVENTS_PER_CALL = 8
CONCURRENT = 50  # calls in flight at once in the AMI stream
ESL_EVENTS_PER_RECORDING = 10
END_EVENT = "BenchEnd"
SPOOL = PurePosixPath("/var/spool/twiml-bench")


def _frame(lines: list[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in lines).encode() + b"\r\n"


def _channel(i: int) -> list[tuple[str, str]]:
    chan = f"PJSIP/trunk-{i:08x}"
    uid = f"1795311559.{i}"
    return [("Privilege", "call,all"), ("Channel", chan), ("ChannelState", "6"),
            ("ChannelStateDesc", "Up"), ("CallerIDNum", "+15551230001"),
            ("CallerIDName", "Lab Caller"), ("ConnectedLineNum", "<unknown>"),
            ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""),
            ("Context", "twiml"), ("Exten", "+15557654321"), ("Priority", "2"),
            ("Uniqueid", uid), ("Linkedid", uid)]


def ami_channel(i: int) -> str:
    return f"PJSIP/trunk-{i:08x}"


def ami_command_id(i: int) -> str:
    return f"bench-rec-{i}"


def _ami_call(i: int) -> list[bytes]:
    ch = _channel(i)
    env = quote(f"agi_request: async\nagi_channel: {ami_channel(i)}\nagi_language: en\n"
                f"agi_type: PJSIP\nagi_uniqueid: 1795311559.{i}\nagi_version: 22.10.1\n"
                "agi_callerid: +15551230001\nagi_calleridname: Lab Caller\n"
                "agi_context: twiml\nagi_extension: +15557654321\nagi_priority: 2\n"
                "agi_arg_1: twiml-pbx-adapter\n\n", safe="")
    result = quote("200 result=21018 (timeout) endpos=59371\n", safe="")
    return [
        _frame([("Event", "Newchannel"), *ch]),
        _frame([("Event", "Newstate"), *ch]),
        _frame([("Event", "AsyncAGIStart"), *ch, ("Env", env)]),
        _frame([("Event", "MixMonitorStart"), *ch]),
        _frame([("Event", "AsyncAGIExec"), *ch, ("Result", result),
                ("CommandId", ami_command_id(i))]),
        _frame([("Event", "MixMonitorStop"), *ch]),
        _frame([("Event", "Hangup"), *ch, ("Cause", "16"), ("Cause-txt", "Normal Clearing")]),
        _frame([("Event", "AsyncAGIEnd"), *ch]),
    ]


def ami_stream(events: int) -> bytes:
    """About `events` AMI events (whole calls, `CONCURRENT` interleaved), then the end marker."""
    calls = max(1, events // AMI_EVENTS_PER_CALL)
    out: list[bytes] = []
    for base in range(0, calls, CONCURRENT):
        batch = [_ami_call(i) for i in range(base, min(calls, base + CONCURRENT))]
        for step in range(AMI_EVENTS_PER_CALL):
            out += [frames[step] for frames in batch]
    out.append(_frame([("Event", END_EVENT)]))
    return b"".join(out)


def call_uuid(call: int) -> str:
    return str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"twiml-bench-{call}"))


def recording_key(call: int, rec: int) -> str:
    return f"RE{call:016x}{rec:016x}"


def recording_path(local_spool: Path, call: int, rec: int) -> Path:
    """Where the adapter asks FreeSWITCH to record (local view; the PBX's is the same)."""
    return local_spool / call_uuid(call) / f"{recording_key(call, rec)}-stereo.wav"


def _esl_support() -> None:
    support = Path(__file__).resolve().parent.parent / "tests" / "support"
    if str(support) not in sys.path:
        sys.path.insert(0, str(support))


def channel(call: int):  # type: ignore[no-untyped-def]
    _esl_support()
    from esl_server.channel import FakeChannel

    ch = FakeChannel(uuid=call_uuid(call), destination="+15557654321",
                     caller_number="+15551230001", caller_name="Lab Caller",
                     created_us=1795312644915258)
    ch.state, ch.call_state, ch.answer_state = "CS_EXECUTE", "ACTIVE", "answered"
    return ch


def connect_reply(call: int) -> bytes:
    return channel(call).connect_reply(timestamp_us=1795312644915258, sequence=1)  # type: ignore[no-any-return]


def esl_call_events(call: int, recordings: int, local_spool: Path) -> list[bytes]:
    """The event frames of one call's socket: `recordings` recordings, one after the other
    (the first rendered by the fake FreeSWITCH, the others the same bytes with their own
    recording key, which has the same length)."""
    ch = channel(call)
    t = 1795312644915258
    path = str(recording_path(local_spool, call, 0))
    app = [("Application", "set"), ("Application-Data", "RECORD_STEREO=true"),
           ("Application-UUID", str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, path)))]
    done = [*app, ("Application-Response", "_none_")]
    first: list[bytes] = []
    for seq, (name, extra) in enumerate((
        ("CHANNEL_EXECUTE", app), ("CHANNEL_EXECUTE_COMPLETE", done),
        ("CHANNEL_EXECUTE", app), ("CHANNEL_EXECUTE_COMPLETE", done),
        ("RECORD_START", [("Record-File-Path", path)]),
        ("MEDIA_BUG_START", [("Media-Bug-Function", "session_record"),
                             ("Media-Bug-Target", path)]),
        ("CHANNEL_EXECUTE", app),
        ("RECORD_STOP", [("Record-File-Path", path),
                         ("Record-Completion-Cause", "success-maxtime")]),
        ("MEDIA_BUG_STOP", [("Media-Bug-Function", "session_record"),
                            ("Media-Bug-Target", path)]),
        ("CHANNEL_EXECUTE_COMPLETE", done),
    ), start=100):
        first.append(ch.event(name, timestamp_us=t + seq * 20_000, sequence=seq, extra=extra))
    key0 = recording_key(call, 0).encode()
    out = list(first)
    for rec in range(1, recordings):
        key = recording_key(call, rec).encode()
        out += [frame.replace(key0, key) for frame in first]
    return out


def esl_end_event() -> bytes:
    _esl_support()
    from esl_server.codec import event_frame

    return event_frame([("Event-Name", "CUSTOM"), ("Event-Subclass", "bench::end"),
                        ("Unique-ID", "bench-end")])  # type: ignore[no-any-return]
