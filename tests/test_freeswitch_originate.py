"""Outbound REST calls on the FreeSWITCH driver: ``bgapi originate`` into the dialplan's
``twiml-outbound`` context, the BACKGROUND_JOB result, ringing (CHANNEL_PROGRESS /
CHANNEL_PROGRESS_MEDIA), cancelling (``uuid_kill … ORIGINATOR_CANCEL``), the inbound
connection's event filters, and which channels count as outbound calls. Against the ESL test
server (tests/fs_esl_server.py), whose dialplan is the shipped dialplan/freeswitch/twiml.xml."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest
from fs_esl_server import Callee, FakeFreeSwitch, OriginateAttempt
from test_freeswitch_driver import Rig, started_rig

from adapter.pbx.base import OriginateRequest, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.inbound import Watch
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


WATCH_EVENTS = "event plain BACKGROUND_JOB CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA"
UNWATCH_EVENTS = "nixevent BACKGROUND_JOB CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA"


class Ringing:
    """`on_ringing` of the originates: the CallSids, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def __call__(self, call_sid: str) -> None:
        await self.queue.put(call_sid)

    async def next(self, within: float = 10.0) -> str:
        return await asyncio.wait_for(self.queue.get(), within)


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


def watch_commands(fs: FakeFreeSwitch) -> list[str]:
    """The commands that change what the inbound connection receives, in order."""
    return [c for c in fs.inbound_commands
            if c.startswith(("filter ", "event ", "nixevent", "noevents"))]


async def nothing_watched(fs: FakeFreeSwitch) -> None:
    """Until the adapter's inbound connection has no filter and no subscription left."""
    session = fs.inbound[0]
    await asyncio.wait_for(fs.until_inbound(
        lambda: not session.filters and not session.subscriptions), 10)


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
    ("-ERR ORIGINATOR_CANCEL\n", "failed"),  # the service says canceled when it asked
    ("-USAGE: <call url> <exten>\n", "failed"),
    ("", "failed"),
])
def test_originate_result(body: str, status: str | None) -> None:
    assert mapping.originate_result(body) == status


def test_bgapi_reply() -> None:
    assert mapping.bgapi_job(f"+OK Job-UUID: {UUID}") == UUID
    assert mapping.bgapi_job("-ERR permission denied") is None
    assert mapping.bgapi_job(f"+OK Job-UUID: {UUID} trailing") is None


def test_cancel_and_filter_command_text() -> None:
    assert mapping.cancel_originate(UUID) == f"uuid_kill {UUID} ORIGINATOR_CANCEL"
    assert mapping.event_filter("Unique-ID", UUID) == f"filter Unique-ID {UUID}"
    assert mapping.event_filter_delete("Job-UUID", UUID) == f"filter delete Job-UUID {UUID}"
    assert mapping.event_unsubscribe(mapping.ORIGINATE_EVENTS) == UNWATCH_EVENTS
    for bad in (f"{UUID} ALL", f"{UUID}\nnoevents", "-" + UUID, "/.*/"):
        with pytest.raises(UnsafeValue):
            mapping.event_filter("Unique-ID", bad)
        with pytest.raises(UnsafeValue):
            mapping.cancel_originate(bad)
    with pytest.raises(UnsafeValue):
        mapping.event_filter("Event-Name", "BACKGROUND_JOB")  # only our two headers
    with pytest.raises(UnsafeValue):
        mapping.event_unsubscribe(["CHANNEL_PROGRESS ALL"])
    with pytest.raises(ValueError):
        Watch(events=mapping.ORIGINATE_EVENTS)  # never events without a filter


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
    (bgapi,) = bgapi_commands(rig.fs)
    job = re.fullmatch(r"bgapi (.*)\nJob-UUID: (\S+)", bgapi)
    assert job is not None and job.group(2) == attempt.job
    assert job.group(1) == mapping.originate(SID, "sofia/gateway/trunk/2004",
                                             channel_uuid=channel, caller_id=FROM, timeout=30)
    # Before the job: this job's and this channel's filters, then the events; after its
    # result: the events, then the filters, taken away again.
    await nothing_watched(rig.fs)
    commands = rig.fs.inbound_commands
    assert watch_commands(rig.fs) == [
        f"filter Job-UUID {attempt.job}", f"filter Unique-ID {channel}", WATCH_EVENTS,
        UNWATCH_EVENTS, f"filter delete Job-UUID {attempt.job}",
        f"filter delete Unique-ID {channel}"]
    assert commands.index(WATCH_EVENTS) < commands.index(bgapi) < commands.index(
        UNWATCH_EVENTS)
    # what reached the connection: this call's ringing and its job's result, nothing else
    assert rig.fs.inbound[0].received == [("CHANNEL_PROGRESS", channel),
                                          ("BACKGROUND_JOB", attempt.job)]
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


async def test_two_originates_share_the_subscription(rig: Rig) -> None:
    """Each waiting call has its own filters; the events stay subscribed until the last one
    has its result, so the connection never subscribes without a filter."""
    outcomes = Outcomes()
    await originate(rig, "2002", outcomes, ring=20)  # rings 1 s here
    await originate(rig, "2003", outcomes, sid=OTHER_SID)  # fails at once
    assert await outcomes.next() == (OTHER_SID, "failed")
    assert await outcomes.next() == (SID, "no-answer")
    await nothing_watched(rig.fs)
    first, second = rig.fs.originates
    assert watch_commands(rig.fs) == [
        f"filter Job-UUID {first.job}", f"filter Unique-ID {first.uuid}", WATCH_EVENTS,
        f"filter Job-UUID {second.job}", f"filter Unique-ID {second.uuid}",
        f"filter delete Job-UUID {second.job}", f"filter delete Unique-ID {second.uuid}",
        UNWATCH_EVENTS,
        f"filter delete Job-UUID {first.job}", f"filter delete Unique-ID {first.uuid}"]


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
    # the new connection was given the call's filters and the events while it was set up,
    # before its first api command; they are taken away again
    await nothing_watched(rig.fs)
    commands = rig.fs.inbound_commands
    second = commands.index("api status", commands.index("api status") + 1)
    assert commands[second + 1:second + 4] == [
        f"filter Job-UUID {attempt.job}", f"filter Unique-ID {channel}", WATCH_EVENTS]
    assert commands.count(WATCH_EVENTS) == 2 and commands[-1].startswith("filter delete")


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


# --- ringing -----------------------------------------------------------------------------------


async def test_ringing_is_reported_once(rig: Rig) -> None:
    """A callee that sends 180 then 183: CHANNEL_PROGRESS and CHANNEL_PROGRESS_MEDIA both
    reach the adapter, `on_ringing` runs once, before the answer."""
    rig.fs.callees["2010"] = Callee(answer_after=2.0, talk_s=None)
    rig.fs.ring_events["2010"] = ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA")
    ringing, outcomes = Ringing(), Outcomes()
    channel = await rig.driver.originate(
        OriginateRequest(SID, ("number", "2010"), FROM, 30), outcomes, on_ringing=ringing)
    assert await ringing.next() == SID
    (attempt,) = rig.fs.originates
    assert not attempt.done.is_set()  # still ringing
    incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
    assert incoming.outbound_call_sid == SID
    assert rig.fs.inbound[0].received[:2] == [("CHANNEL_PROGRESS", channel),
                                              ("CHANNEL_PROGRESS_MEDIA", channel)]
    assert ringing.queue.empty()  # once
    release.set()


async def test_early_media_alone_is_ringing(rig: Rig) -> None:
    """A 183 with no 180 (CHANNEL_PROGRESS_MEDIA only) is ringing too; with
    ignore_early_media=true it does not start the call."""
    rig.fs.ring_events["2002"] = ("CHANNEL_PROGRESS_MEDIA",)
    ringing, outcomes = Ringing(), Outcomes()
    await rig.driver.originate(OriginateRequest(SID, ("number", "2002"), FROM, 10), outcomes,
                               on_ringing=ringing)
    assert await ringing.next() == SID
    assert await outcomes.next() == (SID, "no-answer")
    assert rig.calls.empty()


async def _raw_client(fs: FakeFreeSwitch, *commands: str) -> asyncio.StreamWriter:
    """Another ESL client (fs_cli, a dashboard) on the same FreeSWITCH."""
    reader, writer = await asyncio.open_connection(*fs.address)
    await reader.readuntil(b"\n\n")  # auth/request
    for command in ("auth ClueCon", *commands):
        writer.write(command.encode() + b"\n\n")
        reply = await reader.readuntil(b"\n\n")
        assert b"+OK" in reply, reply
    return writer


async def test_other_channels_and_jobs_are_filtered_out(rig: Rig) -> None:
    """While our call rings, another client's originate rings and ends on the same PBX: its
    CHANNEL_PROGRESS and BACKGROUND_JOB are fired (that client, subscribed to ALL, gets them)
    but never reach the adapter's connection."""
    outcomes, ringing = Outcomes(), Ringing()
    channel = await rig.driver.originate(
        OriginateRequest(SID, ("number", "2002"), FROM, 20), outcomes, on_ringing=ringing)
    assert await ringing.next() == SID
    other = "0f0e0d0c-0b0a-4908-8706-050403020100"
    other_job = "0a0b0c0d-0e0f-4a1b-8c1d-1e1f20212223"
    writer = await _raw_client(
        rig.fs, "event plain ALL",
        f"bgapi originate {{origination_uuid={other},originate_timeout=2}}"
        f"sofia/gateway/trunk/2002 1000 XML default\nJob-UUID: {other_job}")
    theirs = next(a for a in rig.fs.originates if a.job == other_job)
    await asyncio.wait_for(theirs.done.wait(), 10)
    ours: OriginateAttempt = rig.fs.originates[0]
    assert await outcomes.next() == (SID, "no-answer")
    await nothing_watched(rig.fs)
    assert rig.fs.inbound[0].received == [("CHANNEL_PROGRESS", channel),
                                          ("BACKGROUND_JOB", ours.job)]
    assert ("CHANNEL_PROGRESS", other) in rig.fs.inbound[1].received
    assert ("BACKGROUND_JOB", other_job) in rig.fs.inbound[1].received
    assert ringing.queue.empty()
    writer.close()


# --- cancelling --------------------------------------------------------------------------------


async def test_cancel_a_ringing_call(rig: Rig) -> None:
    """``uuid_kill <channel> ORIGINATOR_CANCEL``: FreeSWITCH ends the originate with
    ``-ERR ORIGINATOR_CANCEL`` (the channel's cause), `on_failed` follows (the service reports
    ``canceled`` itself), and nothing stays subscribed."""
    outcomes, ringing = Outcomes(), Ringing()
    channel = await rig.driver.originate(
        OriginateRequest(SID, ("number", "2002"), FROM, 60), outcomes, on_ringing=ringing)
    assert await ringing.next() == SID
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")
    (attempt,) = rig.fs.originates
    assert attempt.cause == "ORIGINATOR_CANCEL"
    assert attempt.result == "-ERR ORIGINATOR_CANCEL\n"
    assert f"api uuid_kill {channel} ORIGINATOR_CANCEL" in rig.fs.inbound_commands
    await nothing_watched(rig.fs)
    assert rig.fs.inbound[0].filters == [] and rig.fs.inbound[0].subscriptions == set()
    # over: nothing to cancel any more, and nothing is sent
    assert await rig.driver.cancel_originate(SID) is False
    assert rig.fs.inbound_commands.count(f"api uuid_kill {channel} ORIGINATOR_CANCEL") == 1
    assert rig.calls.empty() and outcomes.queue.empty() and ringing.queue.empty()


async def test_cancel_what_is_not_waiting(rig: Rig) -> None:
    outcomes = Outcomes()
    assert await rig.driver.cancel_originate(SID) is False  # never placed
    await originate(rig, "2001", outcomes)
    assert await outcomes.next() == (SID, "busy")
    assert await rig.driver.cancel_originate(SID) is False  # already over
    assert not [c for c in rig.fs.inbound_commands if "uuid_kill" in c]


async def test_cancel_after_the_answer_leaves_the_call_alone(rig: Rig) -> None:
    """Answered and on the outbound socket: no longer pending, the call goes on."""
    outcomes = Outcomes()
    channel = await originate(rig, "2004", outcomes)
    incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
    assert incoming.outbound_call_sid == SID
    assert await rig.driver.cancel_originate(SID) is False
    assert not [c for c in rig.fs.inbound_commands if c.startswith("api uuid_kill")]
    await incoming.control.answer()  # still up and under control
    assert not rig.fs.calls[channel].hung_up and not incoming.control.hung_up.is_set()
    release.set()


async def test_cancel_once_answered_but_not_yet_on_the_socket(rig: Rig) -> None:
    """The job said ``+OK`` (answered): cancelling comes too late, nothing is killed (here the
    channel never reaches the socket, so it is failed after CONNECT_TIMEOUT as before)."""
    rig.fs.dialplan[mapping.OUTBOUND_CONTEXT] = []
    outcomes = Outcomes()
    await originate(rig, "2004", outcomes)
    (attempt,) = rig.fs.originates
    await asyncio.wait_for(attempt.done.wait(), 10)
    await nothing_watched(rig.fs)  # the +OK was seen: its filters are gone
    assert await rig.driver.cancel_originate(SID) is False
    assert not [c for c in rig.fs.inbound_commands if "ORIGINATOR_CANCEL" in c]
    assert await outcomes.next() == (SID, "failed")


async def test_answered_while_the_cancel_was_on_its_way(rig: Rig) -> None:
    """The race: the callee answers just before the kill reaches FreeSWITCH, so the job
    reports ``+OK``. The adapter had asked to cancel: the call is treated as cancelled (never
    adopted: its socket gets an empty outbound SID, which the service hangs up)."""
    outcomes = Outcomes()
    channel = await originate(rig, "2002", outcomes, ring=60)
    real_api = rig.fs.api

    def answer_first(command: str) -> str:
        if command == f"uuid_kill {channel} ORIGINATOR_CANCEL":
            rig.fs.ringing_kills[channel].set_result("answer")  # the callee picks up
            return "+OK\n"  # the kill is accepted (and hangs up the answered channel)
        return real_api(command)

    rig.fs.api = answer_first  # type: ignore[method-assign]
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")  # reported as the cancel's result
    (attempt,) = rig.fs.originates
    assert attempt.result == f"+OK {channel}\n"
    incoming, release = await asyncio.wait_for(rig.calls.get(), 10)
    assert incoming.pbx_call_id == channel and incoming.outbound_call_sid == ""
    release.set()


async def test_cancel_when_freeswitch_no_longer_knows_the_channel(rig: Rig) -> None:
    """``-ERR No such channel!``: the attempt ended by itself (its result is on its way), so
    nothing was cancelled: False, and the call's own result is reported."""
    outcomes = Outcomes()
    channel = await originate(rig, "2002", outcomes, ring=10)
    rig.fs.ringing_kills.pop(channel)  # the channel is gone from FreeSWITCH's view
    assert await rig.driver.cancel_originate(SID) is False
    assert f"api uuid_kill {channel} ORIGINATOR_CANCEL" in rig.fs.inbound_commands
    assert await outcomes.next() == (SID, "no-answer")


async def test_ringing_call_keeps_its_watch_across_a_reconnect(rig: Rig) -> None:
    """The inbound connection drops while a call rings: the new one is given the call's
    filters and events before it is used, so the ringing and the cancel's result still come."""
    rig.fs.callees["2010"] = Callee(answer_after=None)
    outcomes, ringing = Outcomes(), Ringing()
    channel = await rig.driver.originate(
        OriginateRequest(SID, ("number", "2010"), FROM, 60), outcomes, on_ringing=ringing)
    rig.fs.set_inbound_down(True)
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
    rig.fs.set_inbound_down(False)
    await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
    session = rig.fs.inbound[0]
    (attempt,) = rig.fs.originates
    assert session.filters == [("Job-UUID", attempt.job), ("Unique-ID", channel)]
    assert session.subscriptions == set(mapping.ORIGINATE_EVENTS)
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")
    assert ("BACKGROUND_JOB", attempt.job) in session.received
    await nothing_watched(rig.fs)


# --- the test server's filters, as mod_event_socket.c (v1.10.12) applies them ----------------


def _event(name: str, **headers: str) -> list[tuple[str, str]]:
    return [("Event-Name", name), *((h.replace("_", "-"), v) for h, v in headers.items())]


async def test_test_server_filter_semantics(rig: Rig) -> None:
    """parse_command's ``filter`` replies and event_handler's matching, on a fake session."""
    session = rig.fs.inbound[0]
    assert session.filter("Unique-ID abc") == "+OK filter added. [Unique-ID]=[abc]"
    assert session.filter("add Job-UUID j1") == "+OK filter added. [Job-UUID]=[j1]"
    assert session.filter("Unique-ID") == "-ERR invalid syntax"
    assert session.filter("delete") == "-ERR invalid syntax"
    assert session.subscribe("plain CHANNEL_PROGRESS BACKGROUND_JOB") == (
        "+OK event listener enabled plain")
    assert session.wants(_event("CHANNEL_PROGRESS", Unique_ID="ABC"))  # value: any case
    assert not session.wants(_event("CHANNEL_PROGRESS", Unique_ID="other"))
    assert session.wants(_event("BACKGROUND_JOB", Job_UUID="j1"))
    assert not session.wants(_event("BACKGROUND_JOB", Job_UUID="j2"))  # another client's
    assert not session.wants(_event("CHANNEL_ANSWER", Unique_ID="abc"))  # not subscribed
    assert not session.wants(_event("CHANNEL_PROGRESS"))  # no filtered header: not sent
    # a negative filter vetoes; /regex/ values
    session.filter("Channel-Name -sofia/internal/9")
    assert not session.wants(_event("CHANNEL_PROGRESS", Unique_ID="abc",
                                    Channel_Name="sofia/internal/9"))
    session.filter("Unique-ID /^zz[0-9]+$/")
    assert session.wants(_event("CHANNEL_PROGRESS", Unique_ID="zz12"))
    # delete: header name in any case, value exactly; "all"
    assert session.filter("delete unique-id ABC") == "+OK filter deleted. [unique-id][ABC]"
    assert ("Unique-ID", "abc") in session.filters
    assert session.filter("delete Unique-ID abc") == "+OK filter deleted. [Unique-ID][abc]"
    assert ("Unique-ID", "abc") not in session.filters
    assert session.filter("delete all") == "+OK filter deleted. [all][]"
    # no filter left: every subscribed event passes
    assert session.wants(_event("CHANNEL_PROGRESS", Unique_ID="anyone"))
    assert session.unsubscribe("CHANNEL_PROGRESS BACKGROUND_JOB") == "+OK events nixed"
    assert not session.wants(_event("CHANNEL_PROGRESS", Unique_ID="anyone"))
    assert session.subscribe("plain") == "-ERR no keywords supplied"
