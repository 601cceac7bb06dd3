"""Outbound REST calls on the FreeSWITCH driver: ``bgapi originate`` into the dialplan's
``twiml-outbound`` context, the BACKGROUND_JOB result, ringing (CHANNEL_PROGRESS /
CHANNEL_PROGRESS_MEDIA), cancelling (``uuid_kill … ORIGINATOR_CANCEL``), the inbound
connection's event filters, and which channels count as outbound calls.

The driver runs on the real FreeSWITCH 1.10.12 of the test session
(tests/labs/freeswitch_driver_rig.py) and dials lab.xml's callees (``loopback/{number}/lab``;
tests/labs/freeswitch_outbound_lab.py: the originated channel is leg A, the callee runs on leg B).
What reached the adapter's inbound connection is tapped from the driver's own event handler, what it
sent from its command functions; what FreeSWITCH did from the test's own connection. A lost inbound
connection is a cut of the loopback TCP proxy between the driver and FreeSWITCH
(tests/support/tcp_proxy.py).

What a real switch cannot be made to do on demand stays on the ESL test server
(tests/support/esl_server/), at the end: an answered channel that never reaches the socket, and the
races of a cancel against the answer or the channel's end."""

from __future__ import annotations

import asyncio
import re
import uuid as uuid_module
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from esl_server.server import FakeFreeSwitch
from fake_freeswitch_rig import Rig as FakeRig
from fake_freeswitch_rig import started_rig
from freeswitch_driver_rig import DriverRig, driver_rig
from freeswitch_lab import EslConnection, FreeSwitchStack, RealFreeSwitch
from freeswitch_outbound_lab import job_result, originated, place_raw_call, reached_adapter
from tcp_proxy import TcpProxy

from adapter.pbx.base import IncomingCall, OriginateRequest, PbxError
from adapter.pbx.freeswitch import FreeSwitchDriver, mapping, replies
from adapter.pbx.freeswitch import inbound as inbound_module
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.inbound import Watch
from adapter.pbx.freeswitch.protocol import EslEvent, parse_event_plain

DIALPLAN = Path(__file__).resolve().parents[3] / "dialplan" / "freeswitch" / "twiml.xml"
SHIPPED_SOCKET = "127.0.0.1:8084"
SID = "CA" + "0123456789abcdef" * 2
OTHER_SID = "CA" + "f" * 32
UUID = "5e2b7a8c-1f3d-4c6b-9a0e-7d8f9a0b1c2d"
FROM = "+15550001234"
FAST: dict[str, Any] = {"reconnect_initial": 0.05, "reconnect_max": 0.4, "api_wait": 0.5}
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
async def fake_rig(tmp_path: Path) -> AsyncIterator[FakeRig]:
    """The driver on the ESL test server (only for what the real switch cannot do on demand)."""
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
    ("-ERR ORIGINATOR_CANCEL\n", "failed"),  # the service says canceled when it asked
    ("-USAGE: <call url> <exten>\n", "failed"),
    ("", "failed"),
])
def test_originate_result(body: str, status: str | None) -> None:
    assert replies.originate_result(body) == status


def test_bgapi_reply() -> None:
    assert replies.bgapi_job(f"+OK Job-UUID: {UUID}") == UUID
    assert replies.bgapi_job("-ERR permission denied") is None
    assert replies.bgapi_job(f"+OK Job-UUID: {UUID} trailing") is None


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
    assert replies.originate_result(event.body) == "no-answer"


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


# --- the driver on the real FreeSWITCH ---------------------------------------------------------


@dataclass
class Tapped:
    """What the driver's inbound connection received (its own event handler: (Event-Name,
    Unique-ID or Job-UUID)) and the commands it sent that change what it receives."""

    received: list[tuple[str, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # filter / event plain / nixevent


@dataclass
class Lab:
    rig: DriverRig
    tap: Tapped
    proxy: TcpProxy  # between the driver's inbound connection and FreeSWITCH

    @property
    def fs(self) -> RealFreeSwitch:
        return self.rig.fs

    @property
    def driver(self) -> FreeSwitchDriver:
        return self.rig.driver


REAL_CONNECT_TIMEOUT = 3.0


@pytest.fixture
async def rig(freeswitch_real: FreeSwitchStack,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lab]:
    tap = Tapped()
    command, subscribe = inbound_module._command, inbound_module._subscribe

    def tapped_command(esl: Any, text: str) -> str:
        tap.sent.append(text)
        return command(esl, text)

    def tapped_subscribe(esl: Any, events: tuple[str, ...], handler: Any) -> str:
        tap.sent.append("event plain " + " ".join(events))
        return subscribe(esl, events, handler)

    monkeypatch.setattr(inbound_module, "_command", tapped_command)
    monkeypatch.setattr(inbound_module, "_subscribe", tapped_subscribe)
    proxy = TcpProxy((freeswitch_real.esl_host, freeswitch_real.esl_port))
    await proxy.start()
    try:
        async with driver_rig(freeswitch_real, esl_port=proxy.address[1],
                              connect_timeout=REAL_CONNECT_TIMEOUT,
                              dial_number="loopback/{number}/lab",
                              dial_sip="loopback/{uri}/lab", **FAST) as rig:
            inbound = rig.driver.inbound
            handler = inbound._on_event
            assert handler is not None

            def on_event(event: EslEvent) -> None:
                tap.received.append((event.name, event.unique_id or event.get("Job-UUID")))
                handler(event)

            inbound._on_event = on_event
            lab = Lab(rig, tap, proxy)
            try:
                yield lab
            finally:
                await hang_up_originated(lab)
    finally:
        await proxy.stop()


async def hang_up_originated(lab: Lab) -> None:
    """No channel of a test outlives it (a ringing originate would ring on)."""
    for attempt in await originated(lab.fs):
        await lab.fs.api(f"uuid_kill {attempt.channel}")


async def originate(lab: Lab, to: str, outcomes: Outcomes, *, sid: str = SID, ring: int = 30,
                    ringing: Ringing | None = None) -> str:
    """`ring`: the REST call's Timeout (how long it may ring), in seconds."""
    return await lab.driver.originate(OriginateRequest(sid, ("number", to), FROM, ring),
                                      outcomes, on_ringing=ringing)


async def next_call(lab: Lab, within: float = 15.0) -> tuple[IncomingCall, asyncio.Event]:
    return await asyncio.wait_for(lab.rig.calls.get(), within)


def job_of(tap: Tapped, channel: str) -> str:
    """The Job-UUID the driver filtered on for the originate of `channel` (its first filter)."""
    i = tap.sent.index(f"filter Unique-ID {channel}")
    found = re.fullmatch(r"filter Job-UUID (\S+)", tap.sent[i - 1])
    assert found is not None, tap.sent
    return found.group(1)


async def nothing_watched(lab: Lab) -> None:
    """Until the driver has taken every filter and the events away again (its commands)."""
    async def wait() -> None:
        while True:
            added = [c for c in lab.tap.sent if c.startswith("filter ") and " delete " not in
                     f" {c} "]
            deleted = [c for c in lab.tap.sent if c.startswith("filter delete ")]
            subscribed = sum(c.startswith("event plain") for c in lab.tap.sent)
            nixed = sum(c.startswith("nixevent") for c in lab.tap.sent)
            if len(added) == len(deleted) and subscribed == nixed:
                return
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), 10)


async def test_answered_call_is_handed_over_as_outbound(rig: Lab) -> None:
    outcomes = Outcomes()
    channel = await originate(rig, "2004", outcomes)
    incoming, release = await next_call(rig)
    assert incoming.outbound_call_sid == SID
    assert incoming.pbx_call_id == channel  # the origination_uuid we chose: leg A
    # After the originate's transfer the caller profile's Caller-Caller-ID-Number names the
    # callee's side ("lab" for a loopback callee): From is the caller ID we originated with.
    assert incoming.to == SID and incoming.from_ == FROM
    assert (await job_result(rig.fs, channel)).body.strip() == f"+OK {channel}"
    (attempt,) = await originated(rig.fs, at_least=1)
    assert attempt.command == mapping.originate(SID, "loopback/2004/lab", channel_uuid=channel,
                                                caller_id=FROM, timeout=30)
    job = job_of(rig.tap, channel)
    # Before the job: this job's and this channel's filters, then the events; after its
    # result: the events, then the filters, taken away again.
    await nothing_watched(rig)
    assert rig.tap.sent == [
        f"filter Job-UUID {job}", f"filter Unique-ID {channel}", WATCH_EVENTS,
        UNWATCH_EVENTS, f"filter delete Job-UUID {job}", f"filter delete Unique-ID {channel}"]
    # what reached the connection: this call's ringing and its job's result, nothing else
    assert rig.tap.received == [("CHANNEL_PROGRESS", channel), ("BACKGROUND_JOB", job)]
    await incoming.control.answer()  # an ordinary call from here on
    await incoming.control.hangup()
    release.set()
    # A negative check: an answered call that never reached the socket is failed once the
    # connect timeout has passed since the +OK; this one did, so nothing is reported.
    await asyncio.sleep(REAL_CONNECT_TIMEOUT * 1.2)
    assert outcomes.queue.empty()


@pytest.mark.parametrize(("to", "cause", "status"), [
    ("2001", "USER_BUSY", "busy"),
    ("2005", "CALL_REJECTED", "busy"),
    ("2002", "NO_ANSWER", "no-answer"),
    ("2003", "UNALLOCATED_NUMBER", "failed"),
    ("2999", "NO_ROUTE_DESTINATION", "failed"),  # no such extension in lab.xml
])
async def test_unanswered_call_reports_its_status(rig: Lab, to: str, cause: str,
                                                  status: str) -> None:
    outcomes = Outcomes()
    channel = await originate(rig, to, outcomes, ring=2)
    assert await outcomes.next() == (SID, status)
    assert (await job_result(rig.fs, channel)).body.strip() == f"-ERR {cause}"
    await rig.fs.sync()
    assert not reached_adapter(rig.fs, channel) and rig.rig.calls.empty()


async def test_two_originates_share_the_subscription(rig: Lab) -> None:
    """Each waiting call has its own filters; the events stay subscribed until the last one
    has its result, so the connection never subscribes without a filter."""
    outcomes = Outcomes()
    first = await originate(rig, "2002", outcomes, ring=3)
    second = await originate(rig, "2003", outcomes, sid=OTHER_SID)  # fails at once
    assert await outcomes.next() == (OTHER_SID, "failed")
    assert await outcomes.next() == (SID, "no-answer")
    await nothing_watched(rig)
    job1, job2 = job_of(rig.tap, first), job_of(rig.tap, second)
    assert rig.tap.sent == [
        f"filter Job-UUID {job1}", f"filter Unique-ID {first}", WATCH_EVENTS,
        f"filter Job-UUID {job2}", f"filter Unique-ID {second}",
        f"filter delete Job-UUID {job2}", f"filter delete Unique-ID {second}",
        UNWATCH_EVENTS,
        f"filter delete Job-UUID {job1}", f"filter delete Unique-ID {first}"]


async def test_refused_before_anything_is_sent(rig: Lab) -> None:
    with pytest.raises(PbxError):
        await originate(rig, "2000,loopback/2001/lab", Outcomes())
    with pytest.raises(PbxError):
        await rig.driver.originate(OriginateRequest(SID, ("number", "2000"), "+1555}x", 30),
                                   Outcomes())
    assert await originated(rig.fs) == [] and rig.tap.sent == []


async def test_trunk_call_with_the_marker_is_an_inbound_call(rig: Lab) -> None:
    """A call from the trunk's context is inbound, whatever variables it carries, even while
    an outbound call with that very SID is waiting for its answer."""
    outcomes = Outcomes()
    await originate(rig, "2002", outcomes, ring=60)  # rings
    forged = await place_raw_call(rig.fs, to="+15557650000", context="twiml", from_="+1555",
                                  variables={mapping.CALL_SID_VARIABLE: SID})
    incoming, release = await next_call(rig)
    leg_b = await rig.fs.wait_event(
        lambda e: e.name == "CHANNEL_EXECUTE" and e.get("Application") == "socket"
        and e.variable("other_loopback_leg_uuid") == forged)
    assert leg_b.variable(mapping.CALL_SID_VARIABLE) == SID  # it does carry the marker
    assert incoming.pbx_call_id == leg_b.unique_id
    assert incoming.outbound_call_sid is None
    release.set()
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")
    await rig.fs.api(f"uuid_kill {forged}")


async def test_unknown_channel_in_the_outbound_context_is_refused(rig: Lab) -> None:
    """In the outbound context only a channel this adapter originated counts: another one
    (not ours, with or without the SID's marker) gets an empty outbound SID, which the service
    hangs up."""
    for variables in ({mapping.CALL_SID_VARIABLE: SID}, {}):
        stranger = await place_raw_call(rig.fs, to=SID, context=mapping.OUTBOUND_CONTEXT,
                                        from_=FROM, variables=variables)
        incoming, release = await next_call(rig)
        leg_b = await rig.fs.wait_event(
            lambda e, a=stranger: e.name == "CHANNEL_EXECUTE"  # type: ignore[misc]
            and e.get("Application") == "socket" and e.variable("other_loopback_leg_uuid") == a)
        assert leg_b.get("Caller-Context") == mapping.OUTBOUND_CONTEXT
        assert incoming.pbx_call_id == leg_b.unique_id
        assert incoming.outbound_call_sid == ""
        release.set()
        await rig.fs.api(f"uuid_kill {stranger}")


# --- ringing -----------------------------------------------------------------------------------


async def test_ringing_is_reported_once(rig: Lab) -> None:
    """2007 rings (180), sends early media (183), then answers: CHANNEL_PROGRESS and
    CHANNEL_PROGRESS_MEDIA both reach the adapter, `on_ringing` runs once, before the answer."""
    ringing, outcomes = Ringing(), Outcomes()
    channel = await originate(rig, "2007", outcomes, ringing=ringing)
    assert await ringing.next() == SID
    await rig.fs.sync()
    assert not rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER" and e.unique_id == channel)
    incoming, release = await next_call(rig)
    assert incoming.outbound_call_sid == SID
    assert rig.tap.received[:2] == [("CHANNEL_PROGRESS", channel),
                                    ("CHANNEL_PROGRESS_MEDIA", channel)]
    assert ringing.queue.empty()  # once
    release.set()


async def test_early_media_alone_is_ringing(rig: Lab) -> None:
    """2006 sends a 183 with no 180 (CHANNEL_PROGRESS_MEDIA only): ringing too; with
    ignore_early_media=true it does not start the call."""
    ringing, outcomes = Ringing(), Outcomes()
    channel = await originate(rig, "2006", outcomes, ring=2, ringing=ringing)
    assert await ringing.next() == SID
    assert await outcomes.next() == (SID, "no-answer")
    assert (await job_result(rig.fs, channel)).body.strip() == "-ERR NO_ANSWER"
    assert rig.tap.received[0] == ("CHANNEL_PROGRESS_MEDIA", channel)
    await rig.fs.sync()
    assert not reached_adapter(rig.fs, channel) and rig.rig.calls.empty()


async def test_other_channels_and_jobs_are_filtered_out(rig: Lab,
                                                        freeswitch_real: FreeSwitchStack) -> None:
    """While our call rings, another client's originate rings and ends on the same PBX: its
    CHANNEL_PROGRESS and BACKGROUND_JOB are fired (the test's own connection, which has no
    filter, gets them) but never reach the adapter's connection."""
    outcomes, ringing = Outcomes(), Ringing()
    channel = await originate(rig, "2002", outcomes, ring=4, ringing=ringing)
    assert await ringing.next() == SID
    other = str(uuid_module.uuid4())
    other_job = str(uuid_module.uuid4())
    s = freeswitch_real
    client = await EslConnection.open(s.esl_host, s.esl_port, s.esl_password,
                                      on_event=lambda _e: None)
    try:
        await client.bgapi(f"originate {{origination_uuid={other},originate_timeout=1}}"
                           "loopback/2002/lab &park()", other_job)
        theirs = await rig.fs.wait_event(lambda e: e.name == "BACKGROUND_JOB"
                                         and e.get("Job-UUID") == other_job)
    finally:
        await client.close()
    assert theirs.body.strip() == "-ERR NO_ANSWER"
    assert rig.fs.seen(lambda e: e.name == "CHANNEL_PROGRESS" and e.unique_id == other)
    assert await outcomes.next() == (SID, "no-answer")
    await nothing_watched(rig)
    assert rig.tap.received == [("CHANNEL_PROGRESS", channel),
                                ("BACKGROUND_JOB", job_of(rig.tap, channel))]
    assert ringing.queue.empty()


# --- cancelling --------------------------------------------------------------------------------


async def test_cancel_a_ringing_call(rig: Lab) -> None:
    """``uuid_kill <channel> ORIGINATOR_CANCEL``: FreeSWITCH ends the originate with
    ``-ERR ORIGINATOR_CANCEL`` (the channel's cause), `on_failed` follows (the service reports
    ``canceled`` itself), and nothing stays subscribed."""
    outcomes, ringing = Outcomes(), Ringing()
    channel = await originate(rig, "2002", outcomes, ring=60, ringing=ringing)
    assert await ringing.next() == SID
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")
    assert (await job_result(rig.fs, channel)).body.strip() == "-ERR ORIGINATOR_CANCEL"
    ended = await rig.rig.wait_hangup(channel)
    assert ended.get("Hangup-Cause") == "ORIGINATOR_CANCEL"
    kill = f"uuid_kill {channel} ORIGINATOR_CANCEL"
    assert kill in await rig.fs.api_commands_so_far()
    await nothing_watched(rig)
    # over: nothing to cancel any more, and nothing is sent
    assert await rig.driver.cancel_originate(SID) is False
    assert (await rig.fs.api_commands_so_far()).count(kill) == 1
    assert rig.rig.calls.empty() and outcomes.queue.empty() and ringing.queue.empty()


async def test_cancel_what_is_not_waiting(rig: Lab) -> None:
    outcomes = Outcomes()
    assert await rig.driver.cancel_originate(SID) is False  # never placed
    await originate(rig, "2001", outcomes)
    assert await outcomes.next() == (SID, "busy")
    assert await rig.driver.cancel_originate(SID) is False  # already over
    assert not [c for c in await rig.fs.api_commands_so_far() if "uuid_kill" in c]


async def test_cancel_after_the_answer_leaves_the_call_alone(rig: Lab) -> None:
    """Answered and on the outbound socket: no longer pending, the call goes on."""
    outcomes = Outcomes()
    channel = await originate(rig, "2004", outcomes)
    incoming, release = await next_call(rig)
    assert incoming.outbound_call_sid == SID
    assert await rig.driver.cancel_originate(SID) is False
    assert not [c for c in await rig.fs.api_commands_so_far() if "uuid_kill" in c]
    await incoming.control.answer()  # still up and under control
    await rig.fs.sync()
    assert not rig.fs.seen(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE"
                           and e.unique_id == channel)
    assert not incoming.control.hung_up.is_set()
    release.set()


# --- the inbound connection lost (cut at the TCP proxy) ----------------------------------------


async def cut_and_wait(rig: Lab, *, keep_refusing: bool) -> None:
    """The inbound connection drops (reset at the proxy); new ones are refused while
    `keep_refusing`."""
    rig.proxy.refuse(True)
    assert rig.proxy.cut() == 1
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
    if not keep_refusing:
        await reconnect(rig)


async def reconnect(rig: Lab) -> None:
    rig.proxy.refuse(False)
    await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)


async def test_result_lost_while_disconnected_is_failed_after_reconnect(rig: Lab) -> None:
    outcomes = Outcomes()
    channel = await originate(rig, "2002", outcomes, ring=2)
    await cut_and_wait(rig, keep_refusing=True)
    # the job ends while the adapter is not connected: its BACKGROUND_JOB goes to nobody
    assert (await job_result(rig.fs, channel)).body.strip() == "-ERR NO_ANSWER"
    await reconnect(rig)
    # the cause went with the event: the channel is gone, so the call failed
    assert await outcomes.next() == (SID, "failed")
    assert f"uuid_exists {channel}" in await rig.fs.api_commands_so_far()
    assert ("BACKGROUND_JOB", job_of(rig.tap, channel)) not in rig.tap.received


async def test_still_ringing_after_reconnect_keeps_waiting(rig: Lab) -> None:
    outcomes = Outcomes()
    channel = await originate(rig, "2002", outcomes, ring=4)
    await cut_and_wait(rig, keep_refusing=False)
    assert f"uuid_exists {channel}" in await rig.fs.api_commands_so_far(
        lambda commands: f"uuid_exists {channel}" in commands)
    assert outcomes.queue.empty()  # uuid_exists said true: still ringing
    # its result arrives on the new connection
    assert await outcomes.next() == (SID, "no-answer")
    assert ("BACKGROUND_JOB", job_of(rig.tap, channel)) in rig.tap.received


async def test_ringing_call_keeps_its_watch_across_a_reconnect(rig: Lab) -> None:
    """The inbound connection drops while a call rings: the new one is given the call's
    filters and events before it is used, so the cancel's result still comes."""
    outcomes, ringing = Outcomes(), Ringing()
    channel = await originate(rig, "2002", outcomes, ring=60, ringing=ringing)
    assert await ringing.next() == SID
    before = len(rig.tap.received)
    await cut_and_wait(rig, keep_refusing=False)
    assert rig.proxy.connections == 2
    assert await rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")
    assert rig.tap.received[before:] == [("BACKGROUND_JOB", job_of(rig.tap, channel))]


# --- on the ESL test server: what the real switch cannot be made to do on demand ---------------

async def fake_originate(rig: FakeRig, to: str, outcomes: Outcomes, *, sid: str = SID,
                         ring: int = 30) -> str:
    """`ring`: the REST call's Timeout, in call seconds (the test server's virtual time)."""
    return await rig.driver.originate(OriginateRequest(sid, ("number", to), FROM, ring),
                                      outcomes)


async def fake_nothing_watched(fs: FakeFreeSwitch) -> None:
    """Until the adapter's inbound connection has no filter and no subscription left."""
    session = fs.inbound[0]
    await asyncio.wait_for(fs.until_inbound(
        lambda: not session.filters and not session.subscriptions), 10)


async def test_answered_but_never_on_the_socket_is_failed_and_killed(fake_rig: FakeRig) -> None:
    """Test server only: the real switch's twiml-outbound context is installed for the whole
    session and cannot be taken away for one test."""
    fake_rig.fs.dialplan[mapping.OUTBOUND_CONTEXT] = []  # the context is not installed
    outcomes = Outcomes()
    channel = await fake_originate(fake_rig, "2004", outcomes)
    assert await outcomes.next() == (SID, "failed")  # CONNECT_TIMEOUT after the +OK
    (attempt,) = fake_rig.fs.originates
    assert attempt.result == f"+OK {channel}\n" and attempt.cause == "NO_ROUTE_DESTINATION"
    assert f"api uuid_kill {channel} NORMAL_CLEARING" in fake_rig.fs.inbound_commands


async def test_cancel_once_answered_but_not_yet_on_the_socket(fake_rig: FakeRig) -> None:
    """(Test server only: needs the outbound context missing, as above.) The job said ``+OK``
    (answered): cancelling comes too late, nothing is killed (here the
    channel never reaches the socket, so it is failed after CONNECT_TIMEOUT as before)."""
    fake_rig.fs.dialplan[mapping.OUTBOUND_CONTEXT] = []
    outcomes = Outcomes()
    await fake_originate(fake_rig, "2004", outcomes)
    (attempt,) = fake_rig.fs.originates
    await asyncio.wait_for(attempt.done.wait(), 10)
    await fake_nothing_watched(fake_rig.fs)  # the +OK was seen: its filters are gone
    assert await fake_rig.driver.cancel_originate(SID) is False
    assert not [c for c in fake_rig.fs.inbound_commands if "ORIGINATOR_CANCEL" in c]
    assert await outcomes.next() == (SID, "failed")


async def test_answered_while_the_cancel_was_on_its_way(fake_rig: FakeRig) -> None:
    """The race: the callee answers just before the kill reaches FreeSWITCH, so the job
    reports ``+OK``. The adapter had asked to cancel: the call is treated as cancelled (never
    adopted: its socket gets an empty outbound SID, which the service hangs up). Test server
    only: the answer cannot be made to land between the kill's arrival and its reply on a real
    switch."""
    outcomes = Outcomes()
    channel = await fake_originate(fake_rig, "2002", outcomes, ring=60)
    real_api = fake_rig.fs.api

    def answer_first(command: str) -> str:
        if command == f"uuid_kill {channel} ORIGINATOR_CANCEL":
            fake_rig.fs.ringing_kills[channel].set_result("answer")  # the callee picks up
            return "+OK\n"  # the kill is accepted (and hangs up the answered channel)
        return real_api(command)

    fake_rig.fs.api = answer_first  # type: ignore[method-assign]
    assert await fake_rig.driver.cancel_originate(SID) is True
    assert await outcomes.next() == (SID, "failed")  # reported as the cancel's result
    (attempt,) = fake_rig.fs.originates
    assert attempt.result == f"+OK {channel}\n"
    incoming, release = await asyncio.wait_for(fake_rig.calls.get(), 10)
    assert incoming.pbx_call_id == channel and incoming.outbound_call_sid == ""
    release.set()


async def test_cancel_when_freeswitch_no_longer_knows_the_channel(fake_rig: FakeRig) -> None:
    """``-ERR No such channel!``: the attempt ended by itself (its result is on its way), so
    nothing was cancelled: False, and the call's own result is reported. Test server only: the
    real switch cannot be held between a channel's end and its job's result."""
    outcomes = Outcomes()
    channel = await fake_originate(fake_rig, "2002", outcomes, ring=10)
    fake_rig.fs.ringing_kills.pop(channel)  # the channel is gone from FreeSWITCH's view
    assert await fake_rig.driver.cancel_originate(SID) is False
    assert f"api uuid_kill {channel} ORIGINATOR_CANCEL" in fake_rig.fs.inbound_commands
    assert await outcomes.next() == (SID, "no-answer")

# --- filter semantics: the real switch and the test server side by side -----------------------

# mod_event_socket.c (v1.10.12) parse_command's ``filter`` replies and event_handler's matching,
# as one script: ("cmd", command, its reply) or ("event", Event-Name, headers, delivered?).
FILTER_SCRIPT: list[tuple[Any, ...]] = [
    ("cmd", "filter Unique-ID abc", "+OK filter added. [Unique-ID]=[abc]"),
    ("cmd", "filter add Job-UUID j1", "+OK filter added. [Job-UUID]=[j1]"),
    ("cmd", "filter Unique-ID", "-ERR invalid syntax"),
    ("cmd", "filter delete", "-ERR invalid syntax"),
    ("cmd", "event plain CHANNEL_PROGRESS BACKGROUND_JOB", "+OK event listener enabled plain"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "ABC"}, True),  # value: any case
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "other"}, False),
    ("event", "BACKGROUND_JOB", {"Job-UUID": "j1"}, True),
    ("event", "BACKGROUND_JOB", {"Job-UUID": "j2"}, False),  # another client's
    ("event", "CHANNEL_ANSWER", {"Unique-ID": "abc"}, False),  # not subscribed
    ("event", "CHANNEL_PROGRESS", {}, False),  # no filtered header: not sent
    # a negative filter vetoes
    ("cmd", "filter Channel-Name -sofia/internal/9",
     "+OK filter added. [Channel-Name]=[-sofia/internal/9]"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "abc", "Channel-Name": "sofia/internal/9"},
     False),
    # /regex/ values, case-sensitive unlike plain ones
    ("cmd", "filter Unique-ID /^zz[0-9]+$/", "+OK filter added. [Unique-ID]=[/^zz[0-9]+$/]"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "zz12"}, True),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "ZZ12"}, False),
    # delete: header name in any case, value exactly
    ("cmd", "filter delete unique-id ABC", "+OK filter deleted. [unique-id][ABC]"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "abc"}, True),  # still there
    ("cmd", "filter delete Unique-ID abc", "+OK filter deleted. [Unique-ID][abc]"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "abc"}, False),
    ("cmd", "filter add Job-UUID", "+OK filter added. [Job-UUID]=[(null)]"),
    ("cmd", "filter delete all", "+OK filter deleted. [all][]"),
    # no filter left: every subscribed event passes
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "anyone"}, True),
    ("cmd", "nixevent CHANNEL_PROGRESS BACKGROUND_JOB", "+OK events nixed"),
    ("event", "CHANNEL_PROGRESS", {"Unique-ID": "anyone"}, False),
    ("cmd", "event plain", "-ERR no keywords supplied"),
]
MARKER = "Twiml-Test-Marker"
MARKER_EVENT = "HEARTBEAT"  # subscribed throughout; the script never fires it


async def run_filter_script(host: str, port: int, password: str,
                            fire: Callable[[str, dict[str, str]], Any]) -> list[tuple[Any, ...]]:
    """`FILTER_SCRIPT` on a fresh connection to `host:port`; `fire(name, headers)` makes the
    PBX fire an event. Each event is followed by a marker event that passes every state of the
    script (its own subscription; a ``/regex/`` filter on a header no scripted event has, and
    with no filter everything passes), so one that was not delivered is known not to come.
    Returns what was seen, in the script's shape."""
    got: list[EslEvent] = []
    arrived = asyncio.Event()

    def on_event(event: EslEvent) -> None:
        got.append(event)
        arrived.set()

    connection = await EslConnection.open(host, port, password, on_event=on_event)
    seen: list[tuple[Any, ...]] = []
    try:
        for command in (f"event plain {MARKER_EVENT}", f"filter {MARKER} /^m-/"):
            reply = await connection._command(command)
            assert reply.reply_text.startswith("+OK"), reply.reply_text
        for step in FILTER_SCRIPT:
            if step[0] == "cmd":
                frame = await connection._command(step[1])
                seen.append(("cmd", step[1], frame.reply_text))
                continue
            _, name, headers, _ = step
            start = len(got)
            marker = f"m-{uuid_module.uuid4().hex}"
            await fire(name, headers)
            await fire(MARKER_EVENT, {MARKER: marker})

            async def until_marker(start: int = start, marker: str = marker) -> None:
                while not any(e.get(MARKER) == marker for e in got[start:]):
                    arrived.clear()
                    await arrived.wait()

            try:
                await asyncio.wait_for(until_marker(), 10)
            except TimeoutError:
                raise AssertionError(f"{step}: {[e.headers for e in got[start:]]}") from None
            delivered = [e for e in got[start:] if e.name == name]
            seen.append(("event", name, headers, bool(delivered)))
    finally:
        await connection.close()
    return seen


async def test_filter_semantics_on_the_real_switch(freeswitch_real: FreeSwitchStack) -> None:
    """The script on the real FreeSWITCH; the events are fired with ``sendevent`` from
    another connection (no channel has those Unique-IDs, so each is fired as it is)."""
    s = freeswitch_real
    sender = await EslConnection.open(s.esl_host, s.esl_port, s.esl_password,
                                      on_event=lambda _e: None)

    async def fire(name: str, headers: dict[str, str]) -> None:
        lines = "".join(f"\n{h}: {v}" for h, v in headers.items())
        reply = await sender._command(f"sendevent {name}{lines}")
        assert reply.reply_text.startswith("+OK"), reply.reply_text

    try:
        assert await run_filter_script(s.esl_host, s.esl_port, s.esl_password, fire) == (
            FILTER_SCRIPT)
    finally:
        await sender.close()


async def test_test_server_filter_semantics(tmp_path: Path) -> None:
    """The same script on the ESL test server (`FakeFreeSwitch.fire`): it filters as the real
    switch does (the test above)."""
    fs = FakeFreeSwitch(spool_pbx=PurePosixPath("/x"), spool_local=tmp_path,
                        sound_prefix=tmp_path)
    await fs.start()

    async def fire(name: str, headers: dict[str, str]) -> None:
        fs.fire([("Event-Name", name), *headers.items()])

    try:
        assert await run_filter_script(*fs.address, "ClueCon", fire) == FILTER_SCRIPT
    finally:
        await fs.stop()
