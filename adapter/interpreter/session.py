"""One call: fetch TwiML, validate it whole, run its verbs in order, follow action/Redirect.

A verb handler returns what happens next:
- ``None``: go on with the next verb of the document;
- a `Fetch`: request that URL and run the TwiML it returns (Record's action, Redirect);
- ``END``: the call is over (Hangup, or the caller hung up).
When the document runs out of verbs the call is hung up, as on Twilio.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urljoin

from adapter import twiml
from adapter.callbacks.events import record_action_event
from adapter.callbacks.owed_requests import forget_record_action
from adapter.config import NumberRoute
from adapter.db.group_commit import Statement
from adapter.db.store import CallRow
from adapter.errors import TwilioError
from adapter.interpreter import dial, gather
from adapter.interpreter.answering import answers_before
from adapter.interpreter.call_recording import CallRecorder
from adapter.interpreter.context import SessionContext
from adapter.interpreter.outbound import SOURCE_OUTBOUND, OutboundCall, send_call_status
from adapter.interpreter.params import CallInfo
from adapter.interpreter.prompting import prompt_file, repeats
from adapter.interpreter.record import RecordVerbRunner
from adapter.pbx.base import CallGone, CallInterrupted, IncomingCall
from adapter.sids import CALL, new_sid
from adapter.tasks import TaskSet
from adapter.twiml import Dial, Document, Verb, parse_document

__all__ = ["END", "CallSession", "Fetch"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ERROR_PROMPT = "We are sorry, an application error has occurred. Goodbye."


@dataclass(frozen=True, slots=True)
class Fetch:
    url: str
    method: str
    extra: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Inline:
    """TwiML given directly (REST ``Twiml``), run as if fetched from `url`."""

    twiml: str
    url: str


class _End:
    def __repr__(self) -> str:
        return "END"


END: Final = _End()
Outcome = Fetch | Inline | _End | None


class CallSession:
    def __init__(self, ctx: SessionContext, incoming: IncomingCall,
                 route: NumberRoute | None, *, outbound: OutboundCall | None = None,
                 claim: Callable[[str], Statement] | None = None) -> None:
        """An inbound call runs its number's `route`; an `outbound` (REST) call its Url/Twiml.
        `claim`: the statement (of the CallSid) that records this node as the inbound call's
        owner, written with the call's row (one transaction before the TwiML is fetched)."""
        self.ctx = ctx
        self._claim = claim
        self.call = incoming.control
        self.incoming = incoming
        self.route = route
        self.outbound = outbound
        if outbound is not None:
            self.info = outbound.info(ctx.config.account_sid, "in-progress")
            self.first_step: Fetch | Inline = (
                Inline(outbound.twiml, "") if outbound.twiml
                else Fetch(outbound.url or "", outbound.method)
            )
        else:
            assert route is not None
            self.info = CallInfo(
                account_sid=ctx.config.account_sid,
                call_sid=new_sid(CALL),
                from_=incoming.from_,
                to=incoming.to,
                caller_name=incoming.caller_name,
            )
            self.first_step = Fetch(route.voice_url, route.voice_method)
        self.answered = False
        self.final_status = "completed"  # <Reject> before the answer: busy or no-answer
        self._leading = True  # no verb but <Redirect> has run yet (answering.answers_before)
        self.started = datetime.now(UTC)
        self.recorder = CallRecorder(ctx, self.call, self.info)
        # Database writes that need not hold the call up (the answered status); `_finish`
        # waits for them before the call's last write.
        self._writes = TaskSet(f"call-writes-{self.info.call_sid}")
        self.document_url = ""
        self._pending_redirect: Fetch | Inline | None = None
        self._handlers: dict[type, Callable[[Verb, str], Awaitable[Outcome]]] = {
            twiml.Record: self._record,
            twiml.Say: self._say,
            twiml.Play: self._play,
            twiml.Pause: self._pause,
            twiml.Hangup: self._hangup,
            twiml.Redirect: self._redirect,
            twiml.Reject: self._reject,
            twiml.StartRecording: self._start_recording,
            twiml.StopRecording: self._stop_recording,
            Dial: self._dial,
            twiml.Gather: self._gather,
            twiml.Unsupported: self._unsupported,
        }

    @property
    def call_sid(self) -> str:
        return self.info.call_sid

    async def run(self) -> None:
        log.info("call %s: %s -> %s (%s)", self.call_sid, self.info.from_ or "anonymous",
                 self.info.to, self.incoming.pbx_call_id)
        if self.outbound is None:
            claim = () if self._claim is None else (self._claim(self.call_sid),)
            await self.ctx.store.add_call(CallRow(
                sid=self.call_sid, account_sid=self.info.account_sid, from_=self.info.from_,
                to=self.info.to, direction=self.info.direction, status="ringing",
                caller_name=self.info.caller_name, pbx=self.ctx.config.pbx,
                pbx_channel=self.incoming.pbx_call_id, date_created=self.started,
                date_updated=self.started, start_time=self.started,
            ), *claim)
        else:
            # Answered: the call row exists since the REST request.
            self.answered = True
            await self.ctx.store.update_call(
                self.call_sid, status="in-progress", start_time=self.started,
                pbx_channel=self.incoming.pbx_call_id,
            )
            await send_call_status(self.ctx, self.outbound, "answered", "in-progress")
            if self.outbound.recording is not None:
                await self.recorder.start(self.outbound.recording, "", source=SOURCE_OUTBOUND)
        try:
            step: Outcome = self.first_step
            while isinstance(step, Fetch | Inline):
                try:
                    document, url = await self._load(step)
                    step = await self._execute(document, url)
                except CallInterrupted:
                    step = None
                if self._pending_redirect is not None:
                    step, self._pending_redirect = self._pending_redirect, None
        except TwilioError as exc:
            log.error("call %s: error %d: %s", self.call_sid, exc.code, exc.message)
            await self._error_prompt()
        except CallGone:
            log.info("call %s: caller hung up", self.call_sid)
        except Exception:
            log.exception("call %s: internal error", self.call_sid)
            await self._error_prompt()
        finally:
            await self.call.hangup()
            self.recorder.call_ended()
            await self.recorder.wait_finished()
            await self._finish()

    async def _finish(self) -> None:
        await self._writes.wait()
        ended = datetime.now(UTC)
        self.info.status = self.final_status
        await self.ctx.store.update_call(
            self.call_sid, status=self.final_status, end_time=ended, date_updated=ended,
            duration=round((ended - self.started).total_seconds()),
        )
        if self.outbound is not None:
            await send_call_status(self.ctx, self.outbound, "completed", "completed",
                                   duration=round((ended - self.started).total_seconds()))
        log.info("call %s: completed", self.call_sid)

    # --- documents --------------------------------------------------------------------------

    async def _load(self, step: Fetch | Inline) -> tuple[Document, str]:
        """Request (or take) TwiML; raises TwilioError (11200 family, 12100, 12200, 12300,
        11750)."""
        content_type: str | None
        if isinstance(step, Inline):
            body, content_type, url = step.twiml.encode(), "text/xml", step.url
        else:
            params = self.info.request_params() + step.extra
            response = await self.ctx.webhooks.request(step.url, step.method, params)
            body, content_type, url = response.body, response.content_type, response.url
        document = parse_document(body, content_type, url=url)
        for finding in document.findings:
            log.warning("call %s: %s: %s", self.call_sid, url, finding)
        self.document_url = url
        return document, url

    async def redirect(self, step: Fetch | Inline) -> None:
        """REST ``Url``/``Twiml`` on a live call: abandon the current TwiML, run `step`."""
        self._pending_redirect = step
        log.info("call %s: redirected by the REST API", self.call_sid)
        await self.call.interrupt()

    async def _execute(self, document: Document, url: str) -> Outcome:
        for verb in document.verbs:
            if self.call.hung_up.is_set():
                return END
            if self._pending_redirect is not None:
                return None
            # Twilio's rule for when a call is answered: adapter/interpreter/answering.py.
            if not self.answered and answers_before(verb, leading=self._leading):
                await self._answer()
            self._leading = self._leading and isinstance(verb, twiml.Redirect)
            outcome = await self._handlers[type(verb)](verb, url)
            if outcome is not None:
                return outcome
        return END

    async def _pbx(self, command: Coroutine[Any, Any, T]) -> T:
        """Send one PBX command of the running document, unless a REST redirect came while the
        verb awaited something else first (a prompt's download or synthesis, a database write):
        then it is not sent (`CallInterrupted`), as the redirect cut the verb. The driver's
        interrupt() cuts only what the PBX is already running."""
        if self._pending_redirect is not None:
            command.close()
            raise CallInterrupted(f"call {self.call_sid}: redirected before the command was sent")
        return await command

    async def _answer(self) -> None:
        if not self.answered:
            await self._pbx(self.call.answer())
            self.answered = True
            self.info.status = "in-progress"
            # In the background: the verb after the answer (a <Start><Recording>) starts at
            # once. Waiting for the database here let the caller's first words go unrecorded
            # under load (bench/real_pbx_load.py: 100 concurrent calls).
            self._writes.spawn(self.ctx.store.update_call(self.call_sid, status="in-progress"),
                               "answered")

    async def _error_prompt(self) -> None:
        """Twilio's behaviour on a fatal application error: say so, then hang up."""
        if self.call.hung_up.is_set():
            return
        try:
            await self._answer()
            await self.call.play(await self.ctx.prompts.say(ERROR_PROMPT, voice=None,
                                                            language="en-US"))
        except CallGone:
            pass
        except Exception:
            log.exception("call %s: could not play the error prompt", self.call_sid)

    # --- verbs ------------------------------------------------------------------------------

    async def _say(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Say)
        await self._play_prompt(verb, url)
        return None

    async def _play(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Play)
        if verb.digits:
            await self._pbx(self.call.send_digits(verb.digits))
        await self._play_prompt(verb, url)
        return None

    async def _play_prompt(self, verb: twiml.Say | twiml.Play, url: str) -> None:
        prompt = await prompt_file(self.ctx, verb, url, self.call_sid)
        if prompt is None:
            return
        for _ in range(repeats(verb.loop)):
            await self._pbx(self.call.play(prompt))

    async def _gather(self, verb: Verb, url: str) -> Outcome:
        """Twilio: with input (or actionOnEmptyResult) the action is requested with ``Digits``
        or ``SpeechResult`` and ``Confidence``, and its TwiML runs; without, the next verb."""
        assert isinstance(verb, twiml.Gather)
        params = await gather.gather_input(self.ctx, self.call, verb, url, send=self._pbx,
                                           call_sid=self.call_sid)
        if params is None:
            return None
        return Fetch(urljoin(url, verb.action or ""), verb.method, params)

    async def _pause(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Pause)
        await self._pbx(self.call.pause(verb.length))
        # Unanswered only if it came first: Twilio rings for its length, then answers.
        if not self.call.hung_up.is_set():
            await self._answer()
        return None

    async def _hangup(self, verb: Verb, url: str) -> Outcome:
        return END

    async def _reject(self, verb: Verb, url: str) -> Outcome:
        """Twilio: a call rejected before its answer ends busy (reason busy) or no-answer
        (rejected); after the answer, <Reject> only hangs up."""
        assert isinstance(verb, twiml.Reject)
        if not self.answered:
            busy = verb.reason == "busy"
            await self._pbx(self.call.reject(busy=busy))
            self.final_status = "busy" if busy else "no-answer"
        return END

    async def _redirect(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Redirect)
        return Fetch(urljoin(url, verb.url), verb.method)

    async def _start_recording(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.StartRecording)
        await self.recorder.start(verb, url)
        return None

    async def _stop_recording(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.StopRecording)
        await self.recorder.stop(verb.name)
        return None

    async def _dial(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, Dial)
        # With answerOnBridge the call is not answered before: the PBX's bridge answers it
        # when the callee answers (Asterisk's Dial, FreeSWITCH's bridge), as on Twilio.
        child_sid = await dial.add_child_call(self.ctx, self.info, verb)
        request = dial.dial_request(verb, self.call_sid)
        async with (dial.recording_dial(self.recorder, verb, url, request.answered) as recording,
                    dial.marking_answered(self.ctx, child_sid, request.answered)):
            result = await self._pbx(self.call.dial(request))
        if result.bridged:
            self.answered = True
            self.info.status = "in-progress"
        await dial.end_child_call(self.ctx, self.info, child_sid, result)
        params = dial.action_params(result, child_sid)
        if recording.sid is not None:
            params += recording.action_params(self.ctx.config.recording_url(recording.sid))
        if self.call.hung_up.is_set():
            self.info.status = "completed"
        if verb.action is None:
            return END if self.call.hung_up.is_set() else None
        action = Fetch(urljoin(url, verb.action), verb.method, params)
        if self.call.hung_up.is_set():
            await self._request_after_hangup(action)
            return END
        return action

    async def _request_after_hangup(self, action: Fetch, *, event: str | None = None) -> None:
        """Twilio still requests an action after the caller hung up; the TwiML it returns is
        moot, so the request is fire-and-forget: it goes through the durable outbox (written
        before it is sent, retried, kept across a restart), ordered after the call's other
        webhooks of the same key."""
        await self.ctx.outbox.enqueue(
            self.call_sid, action.url, action.method,
            [*self.info.request_params(), *action.extra], event=event,
        )

    async def _unsupported(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Unsupported)
        raise TwilioError(12200, verb.why)

    async def _record(self, verb: Verb, url: str) -> Outcome:
        assert isinstance(verb, twiml.Record)
        if self._pending_redirect is not None:
            raise CallInterrupted(f"call {self.call_sid}: redirected before <Record> started")
        runner = RecordVerbRunner(self.ctx, self.call, self.info)
        outcome = await runner.run(verb, url)
        if outcome.action_params is None:
            return None  # empty recording: Twilio skips the action and runs the next verb
        action = Fetch(outcome.action_url, verb.method, outcome.action_params)
        if self.call.hung_up.is_set():
            # With Digits=hangup; the same event id as recovery's, so it is queued once.
            await self._request_after_hangup(action, event=record_action_event(
                outcome.recording_sid))
            await forget_record_action(self.ctx.store, outcome.recording_sid)
            return END
        # Made now, as the next document's fetch: no longer owed (if the adapter dies during
        # the fetch, the app may not see it: at most once for this one request).
        await forget_record_action(self.ctx.store, outcome.recording_sid)
        return action
