"""Property tests: no value reaching a FreeSWITCH command builder can add an ESL header line, a
command argument, another bridge target or channel variables, or leave the spool.

Every builder either raises UnsafeValue or returns a command of exactly the documented shape:
``sendmsg`` messages have their fixed header lines and no others; ``api`` commands have their
fixed number of space-separated words; bridge arguments have one target per requested leg.
"""

from __future__ import annotations

import uuid as uuid_module
from pathlib import PurePosixPath

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.escape import UnsafeValue

ROOT = PurePosixPath("/var/spool/freeswitch/twiml")
CALL = str(uuid_module.UUID(int=1))
EVENT = str(uuid_module.UUID(int=2))
LEG = str(uuid_module.UUID(int=3))

HOSTILE = st.lists(
    st.sampled_from(["\n", "\r\n", "\x00", " ", ",", "|", "{", "}", "[", "]", "$", "${x}",
                     ":_:", "..", "/", "\nsendmsg x\ncall-command: hangup", "%0A", "é", "1",
                     "#", "*", "w", "a", "sofia/", "@", ":", "+"])
    | st.text(max_size=6),
    max_size=10,
).map("".join)


def sendmsg_lines(message: str) -> list[str]:
    assert "\r" not in message and "\x00" not in message
    return message.split("\n")


@given(HOSTILE)
@example("#\ncall-command: hangup")
@settings(max_examples=300)
def test_terminators_and_dtmf_stay_one_header(value: str) -> None:
    for build in (
        lambda: mapping.set_playback_terminators(CALL, value, event_uuid=EVENT),
        lambda: mapping.send_dtmf(CALL, value, event_uuid=EVENT),
    ):
        try:
            message = build()
        except UnsafeValue:
            continue
        lines = sendmsg_lines(message)
        assert [line.split(":")[0] for line in lines[1:]] == [
            "call-command", "execute-app-name", "execute-app-arg", "Event-UUID", "event-lock"]


@given(HOSTILE)
@example("recordings/../../../etc/passwd")
@example("recordings/a b.wav")
@settings(max_examples=300)
def test_paths_stay_inside_the_spool_and_one_argument(name: str) -> None:
    path = ROOT / name
    builders = (
        lambda: mapping.playback(CALL, path, root=ROOT, event_uuid=EVENT),
        lambda: mapping.record(CALL, path, root=ROOT, max_length=60, silence_timeout=5,
                               event_uuid=EVENT),
    )
    for build in builders:
        try:
            message = build()
        except UnsafeValue:
            continue
        lines = sendmsg_lines(message)
        assert len(lines) == 6
        arg = lines[3].removeprefix("execute-app-arg: ")
        target = PurePosixPath(arg.split(" ")[0])
        assert ".." not in target.parts and target.is_relative_to(ROOT)
    for api in (lambda: mapping.uuid_record_stop(CALL, path, root=ROOT),
                lambda: mapping.uuid_record_mask(CALL, path, root=ROOT, masked=True)):
        try:
            command = api()
        except UnsafeValue:
            continue
        assert "\n" not in command and len(command.split(" ")) == 4


@given(st.sampled_from(["number", "sip"]), HOSTILE, st.one_of(st.none(), HOSTILE))
@example("number", "100,sofia/external/evil@x", None)
@example("sip", "sip:a@b}{x=1", "1555")
@settings(max_examples=400)
def test_bridge_has_one_target_per_leg(kind: str, address: str, caller_id: str | None) -> None:
    try:
        endpoint = mapping.dial_target(kind, address,
                                       number_template="sofia/gateway/trunk/{number}",
                                       sip_template="sofia/external/{uri}")
        arg = mapping.bridge_arg([endpoint], legs=[LEG], timeout=30, time_limit=60,
                                 caller_id=caller_id)
    except UnsafeValue:
        return
    assert "\n" not in arg and "\r" not in arg
    # {globals}[leg vars]endpoint: exactly one global block, one leg block, no other separator.
    assert arg.count("{") == 1 and arg.count("[") == 1
    globals_end = arg.index("}")
    assert arg[globals_end + 1:].startswith(f"[origination_uuid={LEG},")
    assert "," not in arg[arg.index("]") + 1:] and "|" not in arg and ":_:" not in arg
