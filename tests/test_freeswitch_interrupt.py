"""interrupt() (REST redirect of a live call) on the FreeSWITCH driver.

The ESL test server models FreeSWITCH's break flag as its source does: ``uuid_break`` sets
CF_BREAK, only the application running at that moment sees it (a bridge does not), and
``switch_core_session_exec`` clears it as the next application starts, so a break that arrives
between applications, or while the next one is still queued, is lost; it never cuts the next
playback. These tests hold the driver to that."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_freeswitch_call_recording import SCALE, write_tone
from test_freeswitch_dial import dial
from test_freeswitch_driver import next_app, started_rig, wav_seconds

from adapter.pbx.base import CallGone, CallInterrupted, RecordRequest


async def test_interrupt_a_playback_then_play_again(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        ctl = call.control
        await ctl.answer()
        prompt = write_tone(rig.spool / "prompts" / "long.wav", 1000, 30)
        playing = asyncio.ensure_future(ctl.play(prompt))
        await next_app(call.fake, "playback")
        await ctl.interrupt()
        run = call.fake.runs("playback")[0]
        assert run.ended is not None, "interrupt() returns once the application has ended"
        with pytest.raises(CallInterrupted):
            await playing
        assert call.fake.runs("playback")[0].interrupted == "break"
        assert f"api uuid_break {call.fake.uuid}" in rig.fs.inbound_commands
        short = write_tone(rig.spool / "prompts" / "short.wav", 1000, 1.0)
        await ctl.play(short)  # the call is ready, and nothing is left to cut this one
        last = call.fake.runs("playback")[-1]
        assert last.interrupted is None and last.played_s == pytest.approx(1.0, abs=0.05)
        assert not ctl.hung_up.is_set()


async def test_gotcha_a_late_break_does_not_cut_the_next_playback(tmp_path: Path) -> None:
    """A uuid_break that arrives when no application runs (here sent by hand) is cleared when
    the next application starts; the driver never needs to send anything to undo it."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        assert (await rig.driver.api(f"uuid_break {call.fake.uuid}")).startswith("+OK")
        assert call.fake.breaks_lost == 1
        await call.control.play(write_tone(rig.spool / "prompts" / "p.wav", 1000, 1.0))
        assert call.fake.runs("playback")[0].interrupted is None


async def test_interrupt_while_idle_returns_at_once(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        await call.control.interrupt()
        assert not any("uuid_break" in c for c in rig.fs.inbound_commands)


async def test_a_break_lost_before_the_application_started_is_sent_again(tmp_path: Path
                                                                          ) -> None:
    """The sendmsg is queued: the application starts a little later, and a break sent in
    between is lost (the flag is cleared at its start). interrupt() breaks again until the
    application reports its end."""
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        call.fake.app_start_delay = 1.0  # call seconds = 100 ms
        sleeping = asyncio.ensure_future(call.control.pause(60))
        while await asyncio.wait_for(call.fake.app_queued.get(), 10) != "sleep":
            pass  # until the sleep's sendmsg has arrived (its application starts later)
        await call.control.interrupt()
        with pytest.raises(CallInterrupted):
            await sleeping
        breaks = [c for c in rig.fs.inbound_commands if c.startswith("api uuid_break")]
        assert len(breaks) >= 2 and call.fake.breaks_lost >= 1
        run = call.fake.runs("sleep")[0]
        assert run.interrupted == "break" and run.ended is not None
        assert run.ended - run.started < 10


async def test_interrupt_a_record_keeps_the_file(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        path = rig.spool / "recordings" / "CA1" / "RE1.wav"
        recording = asyncio.ensure_future(call.control.record(RecordRequest(
            path=path, finish_on_key="#", max_length=60, silence_timeout=0, beep=False)))
        await next_app(call.fake, "record")
        await asyncio.sleep(2 * SCALE)  # two seconds of message
        await call.control.interrupt()
        with pytest.raises(CallInterrupted):
            await recording
        assert 1.5 <= wav_seconds(path) <= 3.0  # RECORD_STOP came: the file is final


async def test_interrupt_a_ringing_dial_cancels_our_legs(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        dialing = asyncio.ensure_future(call.control.dial(dial("2002", "2002", timeout=60)))
        await next_app(call.fake, "bridge")
        await call.control.interrupt()
        with pytest.raises(CallInterrupted):
            await dialing
        legs = [leg_vars["origination_uuid"] for leg_vars, _ in call.fake.dials[0].legs]
        for leg in legs:
            assert f"api uuid_kill {leg} ORIGINATOR_CANCEL" in rig.fs.inbound_commands
        assert not call.control.hung_up.is_set()
        await call.control.pause(1)  # ready for the new TwiML


async def test_interrupt_a_bridged_dial_hangs_up_the_callee(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        await call.control.answer()
        dialing = asyncio.ensure_future(call.control.dial(dial("2004")))
        await asyncio.wait_for(call.fake.bridged.wait(), 10)
        await call.control.interrupt()
        with pytest.raises(CallInterrupted):
            await dialing
        attempt = call.fake.dials[0]
        # NORMAL_CLEARING once the driver has seen CHANNEL_BRIDGE; ORIGINATOR_CANCEL if the
        # interrupt came first (the answered leg is cut either way)
        assert f"api uuid_kill {attempt.answered} {attempt.cause}" in rig.fs.inbound_commands
        assert attempt.cause in ("NORMAL_CLEARING", "ORIGINATOR_CANCEL")
        assert not call.fake.bridged.is_set() and not call.control.hung_up.is_set()


async def test_interrupt_after_hangup(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE) as rig:
        call = await rig.call()
        call.fake.caller_hangup()
        await asyncio.wait_for(call.control.hung_up.wait(), 10)
        with pytest.raises(CallGone):
            await call.control.interrupt()
