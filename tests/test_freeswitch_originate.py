"""Outbound REST calls on the FreeSWITCH driver: ``bgapi originate`` into the dialplan's
``twiml-outbound`` context, the BACKGROUND_JOB result, and which channels count as outbound
calls. Against the ESL test server (tests/fs_esl_server.py), whose dialplan is the shipped
dialplan/freeswitch/twiml.xml."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest
from fs_esl_server import Callee, FakeFreeSwitch
from test_freeswitch_driver import Rig, started_rig

from adapter.pbx.base import OriginateRequest, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.protocol import parse_event_plain

DIALPLAN = Path(__file__).resolve().parent.parent / "dialplan" / "freeswitch" / "twiml.xml"
SHIPPED_SOCKET = "127.0.0.1:8084"
SID = "CA" + "0123456789abcdef" * 2
OTHER_SID = "CA" + "f" * 32
UUID = "5e2b7a8c-1f3d-4c6b-9a0e-7d8f9a0b1c2d"
FROM = "+15550001234"
FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.4, "api_wait": 0.5}
CONNECT_TIMEOUT = 1.0  # also how long an answered call may take to reach the outbound socket


def install_dialplan(fs: FakeFreeSwitch, address: tuple[str, int]) -> None:
    """The shipped dialplan, with its one socket address set to where the adapter listens."""
    text = DIALPLAN.read_text()
    assert text.count(SHIPPED_SOCKET) == 1  # the address is set in one place
    fs.load_dialplan(text.replace(SHIPPED_SOCKET, f"{address[0]}:{address[1]}"))


class Outcomes:
    """`on_failed` of the originates: (CallSid, CallStatus), in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def __call__(self, call_sid: str, status: str) -> None:
        await self.queue.put((call_sid, status))

    async def next(self, within: float = 10.0) -> tuple[str, str]:
        return await asyncio.wait_for(self.queue.get(), within)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with started_rig(tmp_path, scale=0.05, connect_timeout=CONNECT_TIMEOUT, **FAST) as rig:
        assert rig.driver.outbound_address is not None
        install_dialplan(rig.fs, rig.driver.outbound_address)
        yield rig


def bgapi_commands(fs: FakeFreeSwitch) -> list[str]:
    return [c for c in fs.inbound_commands if c.startswith("bgapi ")]


# --- the command text (mapping, escape) --------------------------------------------------------


def test_originate_command_text() -> None:
    text = mapping.originate(SID, "sofia/gateway/trunk/+15557650000", channel_uuid=UUID,
                             caller_id=FROM, timeout=30)
    assert text == (
        f"originate {{origination_uuid={UUID},originate_timeout=30,ignore_early_media=true,"
        f"origination_caller_id_number={FROM},twiml_call_sid={SID}}}"
        f"sofia/gateway/trunk/+15557650000 {SID} XML twiml-outbound")


@pytest.mark.parametrize(("field", "value"), [
    ("caller_id", "+1555,origination_uuid=x"),   # a second variable
    ("caller_id", "+1555}sofia/evil/1"),         # the end of the variables
    ("caller_id", "+1555 1 XML default"),        # more arguments
    ("caller_id", "${uuid_kill(all)}"),          # an expansion
    ("call_sid", "CA" + "0" * 31),               # not CA + 32 hex
    ("call_sid", SID.upper()),
    ("channel_uuid", "not-a-uuid"),
    ("timeout", 0),
    ("timeout", 601),
    ("endpoint", "sofia/gateway/trunk/1,sofia/gateway/trunk/2"),  # a second target
    ("endpoint", "sofia/gateway/trunk/1\nJob-UUID: x"),
])
def test_originate_refuses_unsafe_values(field: str, value: object) -> None:
    values: dict[str, object] = {"call_sid": SID, "endpoint": "sofia/gateway/trunk/1",
                                 "channel_uuid": UUID, "caller_id": FROM, "timeout": 30}
    values[field] = value
    with pytest.raises(UnsafeValue):
        mapping.originate(values["call_sid"], values["endpoint"],  # type: ignore[arg-type]
                          channel_uuid=values["channel_uuid"],  # type: ignore[arg-type]
                          caller_id=values["caller_id"],  # type: ignore[arg-type]
                          timeout=values["timeout"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "status"), [
    (f"+OK {UUID}\n", None),
    ("-ERR USER_BUSY\n", "busy"),
    ("-ERR CALL_REJECTED\n", "busy"),
    ("-ERR NO_ANSWER\n", "no-answer"),
    ("-ERR NO_USER_RESPONSE\n", "no-answer"),
    ("-ERR ALLOTTED_TIMEOUT\n", "no-answer"),
    ("-ERR PROGRESS_TIMEOUT\n", "no-answer"),
    ("-ERR RECOVERY_ON_TIMER_EXPIRE\n", "no-answer"),
    ("-ERR NO_ROUTE_DESTINATION\n", "failed"),
    ("-ERR UNALLOCATED_NUMBER\n", "failed"),
    ("-ERR ORIGINATOR_CANCEL\n", "failed"),  # the adapter never cancels an originate
    ("-USAGE: <call url> <exten>\n", "failed"),
    ("", "failed"),
])
def test_originate_result(body: str, status: str | None) -> None:
    assert mapping.originate_result(body) == status


def test_bgapi_reply() -> None:
    assert mapping.bgapi_job(f"+OK Job-UUID: {UUID}") == UUID
    assert mapping.bgapi_job("-ERR permission denied") is None
    assert mapping.bgapi_job(f"+OK Job-UUID: {UUID} trailing") is None


def test_background_job_frame_as_freeswitch_serializes_it() -> None:
    """The event body (switch_event_serialize: headers, Content-Length, blank line, body)."""
    body = (b"Event-Name: BACKGROUND_JOB\nJob-UUID: " + UUID.encode() + b"\n"
            b"Job-Command: originate\nJob-Command-Arg: %7Borigination_uuid%3Dx%7Dsofia/x\n"
            b"Content-Length: 14\n\n-ERR NO_ANSWER\n")
    event = parse_event_plain(body)
    assert event.name == "BACKGROUND_JOB" and event.get("Job-UUID") == UUID
    assert event.get("Job-Command-Arg") == "{origination_uuid=x}sofia/x"
    assert mapping.originate_result(event.body) == "no-answer"


# --- the dialplan ----------------------------------------------------------------------------


def test_dialplan_outbound_context_uses_the_same_socket() -> None:
    fs = FakeFreeSwitch(spool_pbx=PurePosixPath("/x"), spool_local=Path("/x"),
                        sound_prefix=Path("/x"))
    fs.load_dialplan(DIALPLAN.read_text())
    (inbound,) = fs.dialplan["twiml"]
    (outbound,) = fs.dialplan[mapping.OUTBOUND_CONTEXT]
    assert inbound[1] == outbound[1] == f"{SHIPPED_SOCKET} async full"
    # only a CallSid enters the outbound context's socket; only numbers the inbound one
    assert re.search(outbound[0], SID) and not re.search(outbound[0], "+15557650000")
    assert not re.search(outbound[0], SID + "0") and not re.search(inbound[0], SID)


# --- the driver against the ESL test server ----------------------------------------------------


async def originate(rig: Rig, to: str, outcomes: Outcomes, *, sid: str = SID,
                    ring: int = 30) -> str:
    """`ring`: the REST call's Timeout (how long it may ring), in call seconds."""
    return await rig.driver.originate(
        OriginateRequest(sid, ("number", to), FROM, ring), outcomes)


async def test_answered_call_is_handed_over_as_outbound(rig: Rig) -> None:
    outcomes = Outcomes()
    channel = await originate(rig, "2004", outcomes)
    incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
    assert incoming.outbound_call_sid == SID
    assert incoming.pbx_call_id == channel  # the origination_uuid we chose
    assert (incoming.to, incoming.from_) == (SID, FROM)
    (attempt,) = rig.fs.originates
    assert attempt.uuid == channel and attempt.context == "twiml-outbound"
    await asyncio.wait_for(attempt.done.wait(), 10)
    assert attempt.result == f"+OK {channel}\n"
    # subscribed once, before the job, on the inbound connection
    commands = rig.fs.inbound_commands
    assert commands.count("event plain BACKGROUND_JOB") == 1
    (bgapi,) = bgapi_commands(rig.fs)
    assert commands.index("event plain BACKGROUND_JOB") < commands.index(bgapi)
    job = re.fullmatch(r"bgapi (.*)\nJob-UUID: (\S+)", bgapi)
    assert job is not None and job.group(2) == attempt.job
    assert job.group(1) == mapping.originate(SID, "sofia/gateway/trunk/2004",
                                             channel_uuid=channel, caller_id=FROM, timeout=30)
    await incoming.control.answer()  # an ordinary call from here on
    await incoming.control.hangup()
    release.set()
    # A negative check: an answered call that never reached the socket is failed once
    # CONNECT_TIMEOUT has passed since the +OK; this one did, so nothing is reported.
    await asyncio.sleep(CONNECT_TIMEOUT * 1.5)
    assert outcomes.queue.empty()


@pytest.mark.parametrize(("to", "cause", "status"), [
    ("2001", "USER_BUSY", "busy"),
    ("2005", "CALL_REJECTED", "busy"),
    ("2002", "NO_ANSWER", "no-answer"),
    ("2003", "UNALLOCATED_NUMBER", "failed"),
    ("9999", "NO_ROUTE_DESTINATION", "failed"),
])
async def test_unanswered_call_reports_its_status(rig: Rig, to: str, cause: str,
                                                  status: str) -> None:
    outcomes = Outcomes()
    await originate(rig, to, outcomes, ring=5)
    assert await outcomes.next() == (SID, status)
    (attempt,) = rig.fs.originates
    assert attempt.cause == cause and attempt.result == f"-ERR {cause}\n"
    assert rig.calls.empty()


async def test_second_originate_does_not_subscribe_again(rig: Rig) -> None:
    outcomes = Outcomes()
    await originate(rig, "2001", outcomes)
    await originate(rig, "2003", outcomes, sid=OTHER_SID)
    assert sorted([await outcomes.next(), await outcomes.next()]) == sorted(
        [(SID, "busy"), (OTHER_SID, "failed")])
    assert rig.fs.inbound_commands.count("event plain BACKGROUND_JOB") == 1


async def test_refused_before_anything_is_sent(rig: Rig) -> None:
    with pytest.raises(PbxError):
        await originate(rig, "2000,sofia/gateway/trunk/2001", Outcomes())
    with pytest.raises(PbxError):
        await rig.driver.originate(OriginateRequest(SID, ("number", "2000"), "+1555}x", 30),
                                   Outcomes())
    assert not bgapi_commands(rig.fs)


async def test_trunk_call_with_the_marker_is_an_inbound_call(rig: Rig) -> None:
    """A call from the trunk's context is inbound, whatever variables it carries, even while
    an outbound call with that very SID is waiting for its answer."""
    outcomes = Outcomes()
    await originate(rig, "2002", outcomes, ring=60)  # rings
    assert rig.driver.outbound_address is not None
    forged = rig.fs.place_call(rig.driver.outbound_address, to="+15557650000", from_="+1555")
    forged.channel.set_var(mapping.CALL_SID_VARIABLE, SID)
    incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
    assert incoming.pbx_call_id == forged.uuid
    assert incoming.outbound_call_sid is None
    release.set()


async def test_unknown_channel_in_the_outbound_context_is_refused(rig: Rig) -> None:
    """In the outbound context only a channel this adapter originated counts: another one
    (not ours, or with the wrong SID) gets an empty outbound SID, which the service hangs up."""
    assert rig.driver.outbound_address is not None
    for sid in (SID, ""):
        fake = rig.fs.place_call(rig.driver.outbound_address, to=SID, from_=FROM)
        fake.channel.context = mapping.OUTBOUND_CONTEXT
        if sid:
            fake.channel.set_var(mapping.CALL_SID_VARIABLE, sid)
        incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
        assert incoming.outbound_call_sid == ""
        release.set()


async def test_answered_but_never_on_the_socket_is_failed_and_killed(rig: Rig) -> None:
    rig.fs.dialplan[mapping.OUTBOUND_CONTEXT] = []  # the context is not installed
    outcomes = Outcomes()
    channel = await originate(rig, "2004", outcomes)
    assert await outcomes.next() == (SID, "failed")  # CONNECT_TIMEOUT after the +OK
    (attempt,) = rig.fs.originates
    assert attempt.result == f"+OK {channel}\n" and attempt.cause == "NO_ROUTE_DESTINATION"
    assert f"api uuid_kill {channel} NORMAL_CLEARING" in rig.fs.inbound_commands


async def test_result_lost_while_disconnected_is_failed_after_reconnect(rig: Rig) -> None:
    rig.fs.callees["2010"] = Callee(reject="USER_BUSY", fail_after=20.0)  # 1 s here
    outcomes = Outcomes()
    channel = await originate(rig, "2010", outcomes)
    rig.fs.set_inbound_down(True)
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
    (attempt,) = rig.fs.originates
    await asyncio.wait_for(attempt.done.wait(), 10)  # BACKGROUND_JOB fired to nobody
    rig.fs.set_inbound_down(False)
    await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
    # the cause went with the event: the channel is gone, so the call failed
    assert await outcomes.next() == (SID, "failed")
    assert f"api uuid_exists {channel}" in rig.fs.inbound_commands
    # the new connection subscribed while it was set up
    assert rig.fs.inbound_commands.count("event plain BACKGROUND_JOB") == 2


async def test_still_ringing_after_reconnect_keeps_waiting(rig: Rig) -> None:
    outcomes = Outcomes()
    await originate(rig, "2002", outcomes, ring=60)  # 3 s here
    rig.fs.set_inbound_down(True)
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
    rig.fs.set_inbound_down(False)
    await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
    assert outcomes.queue.empty()  # uuid_exists said true: still ringing
    # its result arrives on the new connection
    assert await outcomes.next() == (SID, "no-answer")
