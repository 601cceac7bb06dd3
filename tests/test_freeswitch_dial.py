"""`<Dial>` on the FreeSWITCH driver (``multiset`` + ``bridge``) against the ESL test server,
whose fake second legs behave like the Asterisk lab's callees: 2000 answers after 1 s and plays
1000 Hz for 4 s, 2001 is busy, 2002 never answers, 2003 does not exist, 2004 talks until hung
up, 2005 declines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_freeswitch_call_recording import SCALE, powers, request
from test_freeswitch_driver import Call, Rig, next_app, started_rig

from adapter.pbx.base import DialRequest, DialResult, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.protocol import EslEvent

LEG = "0f0e0d0c-0b0a-4909-8807-060504030201"
UUID = "b20481ed-3a19-4708-912f-fc4d3beb6c21"


def dial(*numbers: str, timeout: int = 10, time_limit: int = 14400,
         caller_id: str | None = None) -> DialRequest:
    return DialRequest(targets=tuple(("number", n) for n in numbers), timeout=timeout,
                       time_limit=time_limit, caller_id=caller_id)


async def dialled(rig: Rig, req: DialRequest, *, answer: bool = True) -> tuple[Call, DialResult]:
    call = await rig.call()
    if answer:
        await call.control.answer()
    return call, await asyncio.wait_for(call.control.dial(req), 20)


async def test_answered_bridge(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call, result = await dialled(rig, dial("2000", caller_id="+15550009999"))
        (attempt,) = call.fake.dials
        assert result.status == "completed" and result.bridged
        assert result.child_channel == attempt.answered
        assert result.duration == 4  # CHANNEL_BRIDGE → CHANNEL_UNBRIDGE, FreeSWITCH's clock
        (leg_vars, endpoint), = attempt.legs
        assert endpoint == "sofia/gateway/trunk/2000"
        assert leg_vars["origination_uuid"] == attempt.answered and leg_vars["leg_timeout"] == "10"
        assert attempt.global_vars == {"origination_caller_id_number": "+15550009999",
                                       "execute_on_answer": "sched_hangup +14400 "
                                                            "ALLOTTED_TIMEOUT"}
        setup = call.fake.runs("multiset")[0].arg.split(" ")
        assert setup[:3] == ["continue_on_fail=true", "hangup_after_bridge=false",
                             "call_timeout=10"]
        assert not call.control.hung_up.is_set(), "the caller stays after the callee hangs up"
        await call.control.pause(1)  # and the call goes on


@pytest.mark.parametrize(("number", "status"), [("2001", "busy"), ("2002", "no-answer"),
                                                 ("2003", "failed"), ("2005", "busy"),
                                                 ("9999", "failed")])
async def test_unanswered_bridge(tmp_path: Path, number: str, status: str) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call, result = await dialled(rig, dial(number, timeout=2))
        assert (result.status, result.duration, result.bridged, result.child_channel) == (
            status, 0, False, None)
        if number == "2002":  # rang for the whole timeout
            run = call.fake.runs("bridge")[0]
            assert run.ended is not None and run.ended - run.started >= 2.0
        assert not call.control.hung_up.is_set(), "continue_on_fail keeps the caller"
        await call.control.pause(1)


async def test_gotcha_a_failed_bridge_hangs_up_without_continue_on_fail(tmp_path: Path
                                                                        ) -> None:
    """switch_channel_handle_cause: a bridge that fails with any cause but NO_ANSWER /
    ORIGINATOR_CANCEL hangs the caller up unless continue_on_fail is set (here: left out)."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        arg = mapping.bridge_arg(["sofia/gateway/trunk/2001"], legs=[LEG], timeout=5,
                                 time_limit=60, caller_id=None)
        await call.control._execute(mapping.bridge, arg)  # type: ignore[attr-defined]
        assert call.fake.hangup_by == "bridge failed"
        assert call.fake.channel.hangup_cause == "USER_BUSY"


async def test_targets_ring_together_first_answer_wins(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call, result = await dialled(rig, dial("2002", "2000", "2001"))
        (attempt,) = call.fake.dials
        assert [endpoint for _vars, endpoint in attempt.legs] == [
            "sofia/gateway/trunk/2002", "sofia/gateway/trunk/2000", "sofia/gateway/trunk/2001"]
        assert result.status == "completed"
        assert result.child_channel == attempt.legs[1][0]["origination_uuid"]
        assert len({leg_vars["origination_uuid"] for leg_vars, _ in attempt.legs}) == 3


async def test_time_limit_ends_the_bridge(tmp_path: Path) -> None:
    """timeLimit → sched_hangup on the answered leg: FreeSWITCH's whole-second scheduler ends
    it between N-1 and N s after the answer; the caller goes on."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call, result = await dialled(rig, dial("2004", time_limit=3))
        assert result.status == "completed" and 2 <= result.duration <= 3
        assert call.fake.dials[0].cause == "ALLOTTED_TIMEOUT"
        assert not call.control.hung_up.is_set()


async def test_bridge_answers_the_caller(tmp_path: Path) -> None:
    """answerOnBridge: the interpreter does not answer first; the bridge answers the caller
    when the callee answers."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call, result = await dialled(rig, dial("2000"), answer=False)
        assert result.status == "completed"
        assert call.fake.channel.answer_state == "answered"
        assert [r.app for r in call.fake.log] == ["multiset", "bridge"]


async def test_caller_hangs_up_while_it_rings(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        dialing = asyncio.ensure_future(call.control.dial(dial("2002", timeout=30)))
        await next_app(call.fake, "bridge")
        call.fake.caller_hangup()
        result = await asyncio.wait_for(dialing, 10)
        assert (result.status, result.bridged) == ("canceled", False)
        assert call.control.hung_up.is_set()


async def test_caller_hangs_up_while_bridged(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        dialing = asyncio.ensure_future(call.control.dial(dial("2004")))
        await next_app(call.fake, "bridge")
        await asyncio.wait_for(call.fake.bridged.wait(), 10)
        await asyncio.sleep(2 * SCALE)  # two seconds of conversation
        call.fake.caller_hangup()
        result = await asyncio.wait_for(dialing, 10)
        assert result.status == "completed" and result.bridged
        assert 1 <= result.duration <= 3
        assert call.control.hung_up.is_set()


async def test_sip_target_and_templates(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, dial_sip="sofia/internal/{uri}") as rig:
        call = await rig.call()
        await call.control.answer()
        result = await call.control.dial(DialRequest(
            targets=(("sip", "sip:2000@callees.example.com;transport=tcp"),), timeout=10,
            time_limit=60))
        assert result.status == "completed"
        assert call.fake.dials[0].legs[0][1] == (
            "sofia/internal/sip:2000@callees.example.com;transport=tcp")


async def test_bridged_audio_is_recorded_on_the_outbound_track(tmp_path: Path) -> None:
    """Channel 2 of a dual recording is the dialled party: the bridged leg's 1000 Hz lands in
    the outbound track, the caller's 440 Hz in the inbound one."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig))
        result = await call.control.dial(dial("2000"))
        await call.control.stop_call_recording(handle)
        assert result.status == "completed"
        assert handle.inbound_file is not None and handle.outbound_file is not None
        caller = powers(handle.inbound_file, 1.5, 2.0)
        callee = powers(handle.outbound_file, 1.5, 2.0)
        assert caller[0] > 20 * caller[1] and callee[1] > 20 * callee[0]


async def test_unsafe_targets_are_refused(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        for kind, address in (("number", "2000,sofia/gateway/evil/1"), ("number", "${x}"),
                              ("sip", "sip:a@b,c"), ("sip", "sip:{a}@b"), ("fax", "2000")):
            with pytest.raises(UnsafeValue):
                await call.control.dial(DialRequest(((kind, address),), 10, 60))
        with pytest.raises(PbxError):
            await call.control.dial(dial("2000", caller_id="Bob}{x=y"))
        assert not call.fake.log, "nothing runs when a value is refused"


# --- mapping (no server) -----------------------------------------------------------------------


def event(**headers: str) -> EslEvent:
    return EslEvent({k.replace("_", "-"): v for k, v in headers.items()})


def test_dial_status_table() -> None:
    def status(**variables: str) -> str:
        return mapping.dial_status(EslEvent({f"variable_{k}": v for k, v in variables.items()}))

    assert status(originate_disposition="USER_BUSY") == "busy"
    assert status(originate_disposition="NO_ANSWER") == "no-answer"
    assert status(originate_disposition="ORIGINATOR_CANCEL") == "canceled"
    assert status(originate_disposition="UNALLOCATED_NUMBER") == "failed"
    assert status(originate_failed_cause="CALL_REJECTED") == "busy"
    assert status(DIALSTATUS="NOANSWER") == "failed"  # not a cause name: unknown → failed
    assert status() == "failed"
    assert mapping.dial_status(None) == "canceled"


def test_dial_result_duration_from_freeswitch_timestamps() -> None:
    bridged = event(Event_Date_Timestamp="1795312697000000", Bridge_B_Unique_ID=LEG)
    unbridged = event(Event_Date_Timestamp="1795312703600000")
    result = mapping.dial_result(bridged=bridged, unbridged=unbridged, completion=None)
    assert result == DialResult("completed", 7, True, LEG)  # 6.6 s rounds to 7
    fallback = mapping.dial_result(bridged=bridged, unbridged=None, completion=None,
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
    assert ("execute-app-arg: continue_on_fail=true hangup_after_bridge=false call_timeout=30 "
            "originate_disposition= originate_failed_cause= DIALSTATUS= bridge_hangup_cause= "
            "last_bridge_hangup_cause=\n") in setup
    with pytest.raises(UnsafeValue):
        mapping.dial_target("number", "2000", number_template="sofia/gw/{number}|x",
                            sip_template="sofia/external/{uri}")
    with pytest.raises(UnsafeValue):
        mapping.dial_target("number", "2000", number_template="{number}",
                            sip_template="sofia/external/{uri}")
    with pytest.raises(UnsafeValue):
        mapping.bridge_arg(["sofia/x/1"], legs=[LEG], timeout=0, time_limit=60, caller_id=None)
