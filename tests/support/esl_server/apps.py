"""The dialplan applications a `FakeCall` runs for ``sendmsg execute`` (answer, set, sleep,
playback, record) and ``uuid_break``, with FreeSWITCH's behaviour from the lab notes; a mixin
of `esl_server.call.FakeCall`, whose state (channel, clock, signals) it uses."""

from __future__ import annotations

import math
import wave
from collections import deque

from esl_server.codec import Lines
from esl_server.media import FRAME_SAMPLES, SAMPLE_RATE, write_open_wav, write_wav
from esl_server.plans import AppRun, RecordPlan


class Applications:
    """What `FakeCall` runs: `_execute` and an ``_app_<name>`` per application."""

    async def _execute(self, app: str, arg: str, event_uuid: str) -> None:
        channel = self.channel
        run = AppRun(app, arg, event_uuid, started=self.fs.now())
        self.log.append(run)
        channel.set_var("current_loop", "1")
        channel.set_var("total_loops", "1")
        channel.set_var("current_application_data", arg)
        channel.set_var("current_application", app)
        app_lines: Lines = [("Application", app)]
        if arg:
            app_lines.append(("Application-Data", arg))
        self.emit("CHANNEL_EXECUTE", [*app_lines, ("Application-UUID", event_uuid)])
        # switch_core_session_exec clears CF_BREAK as each application starts: a uuid_break
        # that came before (between applications, or while this one was queued) is lost.
        self._signals = deque(sig for sig in self._signals if sig[0] != "break")
        self.current = run
        self.app_started.put_nowait(run)
        handler = getattr(self, f"_app_{app}", None)
        try:
            if handler is None:  # "Invalid Application": FreeSWITCH hangs the call up
                self._hangup("CHAN_NOT_IMPLEMENTED", by="invalid application")
            else:
                await handler(run)
        finally:
            self.current = None
        run.ended = self.fs.now()
        self.emit("CHANNEL_EXECUTE_COMPLETE",
                  [*app_lines, ("Application-Response", run.response),
                   ("Application-UUID", event_uuid)])

    async def _app_answer(self, run: AppRun) -> None:
        channel = self.channel
        if channel.answer_state != "answered":
            channel.answer_state = "answered"
            channel.answered_us = self.fs.now_us()
            self.emit("CHANNEL_ANSWER")
            channel.call_state = "ACTIVE"
        channel.set_var("endpoint_disposition", "ANSWER")

    async def _app_set(self, run: AppRun) -> None:
        name, _, value = run.arg.partition("=")
        self.channel.set_var(name, value)

    async def _app_sleep(self, run: AppRun) -> None:
        signal = await self._wait(int(run.arg or "0") / 1000)
        if signal is not None:
            run.interrupted = signal[0]

    async def _app_playback(self, run: AppRun) -> None:
        local = self.fs.local_path(run.arg)
        if local is None or not local.is_file():
            run.response = "FILE NOT FOUND"
            return
        with wave.open(str(local), "rb") as wav:
            length = wav.getnframes() / wav.getframerate()
        began = self.fs.now()
        signal = await self._wait(length)
        if signal is None:
            run.played_s = length
        else:
            run.interrupted = signal[0]
            run.played_s = min(length, self.fs.now() - began)
        run.response = "FILE PLAYED"

    async def _app_record(self, run: AppRun) -> None:
        channel = self.channel
        args = run.arg.split(" ")
        path = self.fs.resolve(args[0])
        limit = int(args[1]) if len(args) > 1 else 0
        local = self.fs.local_path(path)
        if local is None or not self.fs.can_write(local) or not local.parent.is_dir():
            # switch_ivr_record_file cannot open the file (it makes no folders, unlike
            # uuid_record): the record app hangs up (§8.9), as the real switch does.
            self._hangup("DESTINATION_OUT_OF_ORDER", by="record could not open its file")
            return
        write_open_wav(local, 1)
        plan = self.plans.popleft() if self.plans else RecordPlan()
        channel.set_var("playback_terminator_used", "")
        channel.set_var("silence_hits_exhausted", "false")
        channel.set_var("read_codec", "L16")
        channel.set_var("read_rate", "8000")
        start = self.fs.now()
        self.emit("RECORD_START", [("Record-File-Path", path)])

        whole_start = math.floor(start)
        limit_at = (whole_start + limit + 1 - start) if limit else math.inf  # epoch seconds
        hangup_at = plan.hangup_at if plan.hangup_at is not None else math.inf
        # call time: planned moments are exact, whatever the test machine's jitter
        target = min(limit_at, hangup_at)
        signal = await self._wait(target - (self.fs.now() - start))
        elapsed = target
        if signal is not None:
            elapsed = min(target, self.fs.now() - start)
            reason = signal[0]
        elif target == hangup_at:
            self._hangup("NORMAL_CLEARING", by="caller")
            reason = "hangup"
        else:
            reason = "limit"
        if reason == "break" or (reason == "hangup" and self._signals):
            self._signals.clear()
        stopped = elapsed
        talk = min(stopped, plan.talk_s)
        seconds = stopped if plan.media else talk
        samples = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
        talk_samples = min(samples, int(talk * SAMPLE_RATE))
        write_wav(local, talk_samples, samples - talk_samples)
        size = local.stat().st_size
        channel.set_var("record_record_file_size", str(size))
        channel.set_var("record_file_size", str(size))
        channel.set_var("record_seconds", str(samples // SAMPLE_RATE))
        channel.set_var("record_ms", str(samples * 1000 // SAMPLE_RATE))
        channel.set_var("record_samples", str(samples))
        run.interrupted = reason
        self.emit("RECORD_STOP", [("Record-File-Path", path)])


    def break_app(self) -> None:
        """``uuid_break``: sets CF_BREAK; only an application running now notices it, and the
        next application's start clears it (switch_core_session_exec)."""
        if self.current is None:
            self.breaks_lost += 1
            return
        self._signal("break")
