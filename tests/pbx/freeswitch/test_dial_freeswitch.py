"""`<Dial>` on the FreeSWITCH driver (``multiset`` + ``bridge``) on a real FreeSWITCH 1.10.12
(tests/labs/freeswitch_driver_rig.py). The driver dials ``loopback/{number}/lab`` (and
``loopback/{uri}/lab``), so each callee is a real channel running an extension of
docker/freeswitch/conf/dialplan/lab.xml: 2000 answers after 1 s, sends 1000 Hz for 4 s and hangs
up; 2001 is busy; 2002 never answers; 2003 is unallocated; 2004 answers and talks until hung up;
2005 declines (CALL_REJECTED, SIP 603); 9999 has no extension. What FreeSWITCH did is read from
its own events (CHANNEL_EXECUTE[_COMPLETE] of the caller's leg, CHANNEL_CREATE/BRIDGE/HANGUP of
the callees' legs); durations come from its timestamps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from audio_checks import tones_440_1000
from freeswitch_dialing import DIAL_NUMBER, DIAL_SIP, bridge_legs, dial, stamp
from freeswitch_driver_rig import DriverCall, DriverRig, driver_rig
from freeswitch_lab import FreeSwitchStack

from adapter.pbx.base import CallRecordingRequest, DialRequest, DialResult, PbxError
from adapter.pbx.freeswitch import mapping, replies
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.protocol import EslEvent

LEG = "0f0e0d0c-0b0a-4909-8807-060504030201"
UUID = "b20481ed-3a19-4708-912f-fc4d3beb6c21"
SETUP = ("continue_on_fail=true hangup_after_bridge=false call_timeout={timeout} "
         "originate_disposition= originate_failed_cause= DIALSTATUS= bridge_hangup_cause= "
         "last_bridge_hangup_cause=")


@pytest.fixture
async def rig(freeswitch_real: FreeSwitchStack) -> AsyncIterator[DriverRig]:
    async with driver_rig(freeswitch_real, dial_number=DIAL_NUMBER, dial_sip=DIAL_SIP) as rig:
        yield rig


async def dialled(rig: DriverRig, req: DialRequest, *, answer: bool = True
                  ) -> tuple[DriverCall, DialResult]:
    call = await rig.call()
    if answer:
        await call.control.answer()
    return call, await asyncio.wait_for(call.control.dial(req), 30)


async def legs_of(rig: DriverRig, call: DriverCall) -> dict[str, str]:
    """{endpoint: leg uuid} of the call's last bridge, from the data FreeSWITCH executed."""
    bridges = [data for app, data in await rig.apps(call.uuid) if app == "bridge"]
    return bridge_legs(bridges[-1])


def created_event(rig: DriverRig, leg: str) -> EslEvent:
    (created,) = rig.fs.seen(lambda e: e.name == "CHANNEL_CREATE" and e.unique_id == leg)
    return created


async def bridge_seconds(rig: DriverRig, call: DriverCall) -> float:
    """CHANNEL_BRIDGE to CHANNEL_UNBRIDGE of the caller's leg, on FreeSWITCH's clock."""
    bridged = await rig.fs.wait_event(lambda e: e.name == "CHANNEL_BRIDGE"
                                      and e.unique_id == call.uuid)
    unbridged = await rig.fs.wait_event(lambda e: e.name == "CHANNEL_UNBRIDGE"
                                        and e.unique_id == call.uuid)
    return (stamp(unbridged) - stamp(bridged)) / 1e6


async def test_answered_bridge(rig: DriverRig) -> None:
    call, result = await dialled(rig, dial("2000", caller_id="+15550009999"))
    assert result.status == "completed" and result.bridged
    (leg,) = (await legs_of(rig, call)).values()
    assert result.child_channel == leg
    # DialCallDuration: CHANNEL_BRIDGE → CHANNEL_UNBRIDGE (2000 talks 4 s after its answer).
    seconds = await bridge_seconds(rig, call)
    assert result.duration == math.floor(seconds + 0.5) and 3.5 <= seconds <= 5.0
    assert await rig.apps(call.uuid, completed=True) == [
        ("answer", ""),
        ("multiset", SETUP.format(timeout=10)),
        ("bridge", "{origination_caller_id_number=+15550009999,execute_on_answer=sched_hangup "
                   f"+14400 ALLOTTED_TIMEOUT}}[origination_uuid={leg},leg_timeout=10]"
                   "loopback/2000/lab"),
    ]
    # The callee's leg has our uuid and the callerId, and ran the time limit on its answer.
    created = created_event(rig, leg)
    assert created.get("Channel-Name") == "loopback/2000-a"
    assert created.get("Caller-Caller-ID-Number") == "+15550009999"
    await rig.wait_app(leg, "sched_hangup")
    assert ("sched_hangup", "+14400 ALLOTTED_TIMEOUT") in await rig.apps(leg)
    bridge = await rig.wait_app(call.uuid, "bridge", completed=True)
    assert bridge.variable("originate_disposition") == "SUCCESS"
    assert not call.control.hung_up.is_set(), "the caller stays after the callee hangs up"
    await call.control.pause(1)  # and the call goes on
    assert (await rig.apps(call.uuid, completed=True))[-1] == ("sleep", "1000")


@pytest.mark.parametrize(("number", "cause", "status"), [
    ("2001", "USER_BUSY", "busy"),
    ("2002", "NO_ANSWER", "no-answer"),
    ("2003", "UNALLOCATED_NUMBER", "failed"),
    # A decline (SIP 603 → CALL_REJECTED; DIALSTATUS says DONTCALL): Twilio documents no
    # DialCallStatus for it; we report busy.
    ("2005", "CALL_REJECTED", "busy"),
    ("9999", "NO_ROUTE_DESTINATION", "failed"),
])
async def test_unanswered_bridge(rig: DriverRig, number: str, cause: str, status: str) -> None:
    call, result = await dialled(rig, dial(number, timeout=3))
    assert (result.status, result.duration, result.bridged, result.child_channel) == (
        status, 0, False, None)
    started = await rig.wait_app(call.uuid, "bridge")
    ended = await rig.wait_app(call.uuid, "bridge", completed=True)
    assert ended.variable("originate_disposition") == cause
    (leg,) = (await legs_of(rig, call)).values()
    assert (await rig.wait_hangup(leg)).get("Hangup-Cause") == cause
    rang = (stamp(ended) - stamp(started)) / 1e6
    if number == "2002":
        # call_timeout is checked against FreeSWITCH's whole-second clock ("elapsed >=
        # timeout" in switch_ivr_originate): timeout N rings between N-1 and N seconds.
        assert 2.0 <= rang <= 3.5
    else:
        assert rang < 2.0
    assert not call.control.hung_up.is_set(), "continue_on_fail keeps the caller"
    await call.control.pause(1)
    assert (await rig.apps(call.uuid, completed=True))[-1] == ("sleep", "1000")


@pytest.mark.parametrize(("number", "call_timeout", "cause", "hung_up"), [
    ("2001", False, "USER_BUSY", True),
    ("2002", False, "ALLOTTED_TIMEOUT", True),  # leg_timeout alone: the leg's own limit
    ("2002", True, "NO_ANSWER", False),  # call_timeout (checked first) ends the ringing
])
async def test_gotcha_a_failed_bridge_hangs_up_without_continue_on_fail(
        rig: DriverRig, number: str, call_timeout: bool, cause: str, hung_up: bool) -> None:
    """switch_channel_handle_cause: a bridge that fails with any cause but NO_ANSWER /
    NO_USER_RESPONSE / ORIGINATOR_CANCEL hangs the caller up unless continue_on_fail is set
    (here the driver's multiset is left out; the driver always sets it). An unanswered leg
    ends with NO_ANSWER only through call_timeout; its leg_timeout alone gives
    ALLOTTED_TIMEOUT, which hangs up."""
    call = await rig.call()
    await call.control.answer()
    if call_timeout:
        await call.control._execute(mapping.execute, "set", "call_timeout=2")
    arg = mapping.bridge_arg([DIAL_NUMBER.format(number=number)], legs=[LEG], timeout=2,
                             time_limit=60, caller_id=None)
    done = await call.control._execute(mapping.bridge, arg)
    assert done.variable("originate_disposition") == cause
    if hung_up:
        ended = await rig.wait_hangup(call.uuid)
        assert ended.get("Hangup-Cause") == cause
        await asyncio.wait_for(call.control.hung_up.wait(), 10)
    else:
        await call.control.pause(1)
        assert not call.control.hung_up.is_set()
        await rig.fs.sync()
        assert not rig.fs.seen(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE"
                               and e.unique_id == call.uuid)


async def test_targets_ring_together_first_answer_wins(rig: DriverRig) -> None:
    call, result = await dialled(rig, dial("2002", "2000", "2001"))
    legs = await legs_of(rig, call)
    assert list(legs) == ["loopback/2002/lab", "loopback/2000/lab", "loopback/2001/lab"]
    assert len(set(legs.values())) == 3
    assert result.status == "completed"
    assert result.child_channel == legs["loopback/2000/lab"]
    # All three were created at once (one bridge), the losers ended by FreeSWITCH.
    created = [created_event(rig, leg) for leg in legs.values()]
    assert max(map(stamp, created)) - min(map(stamp, created)) < 500_000
    assert (await rig.wait_hangup(legs["loopback/2001/lab"])).get("Hangup-Cause") == "USER_BUSY"
    loser = await rig.wait_hangup(legs["loopback/2002/lab"])
    assert loser.get("Hangup-Cause") == "LOSE_RACE"
    # The loser was hung up when the winner answered, not after the bridge.
    (answered,) = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER"
                              and e.unique_id == legs["loopback/2000/lab"])
    assert abs(stamp(loser) - stamp(answered)) < 500_000


async def test_time_limit_ends_the_bridge(rig: DriverRig) -> None:
    """timeLimit → sched_hangup on the answered leg: FreeSWITCH's whole-second scheduler ends
    it between N-1 and N s after the answer; the caller goes on."""
    call, result = await dialled(rig, dial("2004", time_limit=3))
    assert result.status == "completed" and 2 <= result.duration <= 3
    assert 1.9 <= await bridge_seconds(rig, call) <= 3.2
    assert result.child_channel is not None
    ended = await rig.wait_hangup(result.child_channel)
    assert ended.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert not call.control.hung_up.is_set()
    await call.control.pause(1)


async def test_bridge_answers_the_caller(rig: DriverRig) -> None:
    """answerOnBridge: the interpreter does not answer first; the bridge answers the caller
    when the callee answers, not before."""
    call, result = await dialled(rig, dial("2000"), answer=False)
    assert result.status == "completed"
    assert [app for app, _ in await rig.apps(call.uuid)] == ["socket", "multiset", "bridge"]
    (answered,) = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER" and e.unique_id == call.uuid)
    assert result.child_channel is not None
    (callee,) = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER"
                            and e.unique_id == result.child_channel)
    started = await rig.wait_app(call.uuid, "bridge")
    assert started.get("Answer-State") != "answered"
    assert stamp(answered) >= stamp(callee) >= stamp(started) + 900_000  # 2000 rings 1 s


async def test_caller_hangs_up_while_it_rings(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    dialing = asyncio.ensure_future(call.control.dial(dial("2002", timeout=30)))
    await rig.wait_app(call.uuid, "bridge")
    (leg,) = (await legs_of(rig, call)).values()
    await rig.fs.wait_event(lambda e: e.name == "CHANNEL_PROGRESS" and e.unique_id == leg)
    call.caller.caller_hangup()
    result = await asyncio.wait_for(dialing, 10)
    assert (result.status, result.bridged) == ("canceled", False)
    assert call.control.hung_up.is_set()
    assert (await rig.wait_hangup(leg)).get("Hangup-Cause") == "ORIGINATOR_CANCEL"


async def test_caller_hangs_up_while_bridged(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    dialing = asyncio.ensure_future(call.control.dial(dial("2004")))
    await rig.fs.wait_event(lambda e: e.name == "CHANNEL_BRIDGE" and e.unique_id == call.uuid)
    await asyncio.sleep(2)  # the caller talks for two seconds, then hangs up
    call.caller.caller_hangup()
    result = await asyncio.wait_for(dialing, 10)
    assert result.status == "completed" and result.bridged
    seconds = await bridge_seconds(rig, call)
    assert result.duration == math.floor(seconds + 0.5) and 1 <= result.duration <= 3
    assert call.control.hung_up.is_set()
    assert result.child_channel is not None
    await rig.wait_hangup(result.child_channel)  # the callee is hung up too


async def test_sip_target_and_templates(rig: DriverRig) -> None:
    call = await rig.call()
    await call.control.answer()
    uri = "sip:2000@callees.example.com;transport=tcp"
    result = await asyncio.wait_for(call.control.dial(DialRequest(
        targets=(("sip", uri),), timeout=10, time_limit=60)), 30)
    assert result.status == "completed"
    assert list(await legs_of(rig, call)) == [f"loopback/{uri}/lab"]
    assert result.child_channel is not None
    created = created_event(rig, result.child_channel)
    assert created.get("Caller-Destination-Number") == uri


async def test_bridged_audio_is_recorded_on_the_outbound_track(rig: DriverRig) -> None:
    """The outbound track of a call recording (channel 2 of FreeSWITCH's stereo file) is what
    the caller hears: the bridged callee's 1000 Hz; the inbound track (channel 1) is the
    caller's 440 Hz."""
    call = await rig.call(extension="speak_20000")  # the caller talks from its answer on
    await call.control.answer()
    handle = await call.control.start_call_recording(CallRecordingRequest(
        key="RE1", directory=rig.spool / "recordings" / "CA1", inbound=True, outbound=True))
    result = await asyncio.wait_for(call.control.dial(dial("2000")), 30)
    await call.control.stop_call_recording(handle)
    assert result.status == "completed"
    assert handle.stereo_file is not None
    # 2000 answers about 1 s into the recording and talks for 4 s.
    caller = tones_440_1000(handle.stereo_file, 0, start=2.0, length=2.0)
    callee = tones_440_1000(handle.stereo_file, 1, start=2.0, length=2.0)
    assert caller[0] > 20 * caller[1] and callee[1] > 20 * callee[0]


async def test_unsafe_targets_are_refused(rig: DriverRig) -> None:
    call = await rig.call()
    for kind, address in (("number", "2000,loopback/2001/lab"), ("number", "${x}"),
                          ("sip", "sip:a@b,c"), ("sip", "sip:{a}@b"), ("fax", "2000")):
        with pytest.raises(UnsafeValue):
            await call.control.dial(DialRequest(((kind, address),), 10, 60))
    with pytest.raises(PbxError):
        await call.control.dial(dial("2000", caller_id="Bob}{x=y"))
    await call.control.pause(1)  # the call is still ours
    # Nothing ran for the refused <Dial>s: only the dialplan's socket and the pause.
    assert [app for app, _ in await rig.apps(call.uuid)] == ["socket", "sleep"]
    assert not rig.fs.seen(lambda e: e.name == "CHANNEL_CREATE"
                           and e.get("Channel-Name").startswith("loopback/2"))


# --- mapping (no PBX) --------------------------------------------------------------------------


def event(**headers: str) -> EslEvent:
    return EslEvent({k.replace("_", "-"): v for k, v in headers.items()})


def test_dial_status_table() -> None:
    def status(**variables: str) -> str:
        return replies.dial_status(EslEvent({f"variable_{k}": v for k, v in variables.items()}))

    assert status(originate_disposition="USER_BUSY") == "busy"
    assert status(originate_disposition="NO_ANSWER") == "no-answer"
    assert status(originate_disposition="ORIGINATOR_CANCEL") == "canceled"
    assert status(originate_disposition="UNALLOCATED_NUMBER") == "failed"
    assert status(originate_failed_cause="CALL_REJECTED") == "busy"
    assert status(DIALSTATUS="NOANSWER") == "failed"  # not a cause name: unknown → failed
    assert status() == "failed"
    assert replies.dial_status(None) == "canceled"


def test_dial_result_duration_from_freeswitch_timestamps() -> None:
    bridged = event(Event_Date_Timestamp="1795312697000000", Bridge_B_Unique_ID=LEG)
    unbridged = event(Event_Date_Timestamp="1795312703600000")
    result = replies.dial_result(bridged=bridged, unbridged=unbridged, completion=None)
    assert result == DialResult("completed", 7, True, LEG)  # 6.6 s rounds to 7
    fallback = replies.dial_result(bridged=bridged, unbridged=None, completion=None,
                                   ended_us=1795312699400000)
    assert fallback.duration == 2


def test_bridge_text() -> None:
    arg = mapping.bridge_arg(["sofia/gateway/trunk/+15551230000", "sofia/external/sip:a@b"],
                             legs=[LEG, LEG], timeout=30, time_limit=600, caller_id=None)
    text = mapping.bridge(UUID, arg, event_uuid=LEG)
    assert (
        "execute-app-name: bridge\n"
        "execute-app-arg: {execute_on_answer=sched_hangup +600 ALLOTTED_TIMEOUT}"
        f"[origination_uuid={LEG},leg_timeout=30]sofia/gateway/trunk/+15551230000,"
        f"[origination_uuid={LEG},leg_timeout=30]sofia/external/sip:a@b\n"
    ) in text
    setup = mapping.dial_setup(UUID, 30, event_uuid=LEG)
    assert f"execute-app-arg: {SETUP.format(timeout=30)}\n" in setup
    with pytest.raises(UnsafeValue):
        mapping.dial_target("number", "2000", number_template="sofia/gw/{number}|x",
                            sip_template="sofia/external/{uri}")
    with pytest.raises(UnsafeValue):
        mapping.dial_target("number", "2000", number_template="{number}",
                            sip_template="sofia/external/{uri}")
    with pytest.raises(UnsafeValue):
        mapping.bridge_arg(["sofia/x/1"], legs=[LEG], timeout=0, time_limit=60, caller_id=None)
