"""``bgapi originate`` as mod_commands' originate_function runs it: the dial string split as
switch_ivr_originate does, one endpoint ringing as its `Callee` says, the answered channel
sent to its context's ``socket`` (read from the dialplan file), and BACKGROUND_JOB; a mixin of
`esl_server.server.FakeFreeSwitch`."""

from __future__ import annotations

import asyncio
import re
import uuid as uuid_module
from dataclasses import dataclass, field
from xml.etree import ElementTree

from esl_server.call import FakeCall
from esl_server.channel import OriginatedChannel
from esl_server.codec import core_prolog
from esl_server.plans import Callee, callee_key

# When a callee that answers (or never does) rings in an originate, in call seconds (at most
# half of its time to answer).
RING_AFTER = 0.2
# mod_commands.c's ORIGINATE_SYNTAX (FreeSWITCH 1.10.12).
ORIGINATE_SYNTAX = ("<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                    "[<cid_name>] [<cid_num>] [<timeout_sec>]")


@dataclass(slots=True)
class OriginateAttempt:
    """One ``originate`` run through ``bgapi``, and how it went (for assertions)."""

    job: str
    arg: str
    global_vars: dict[str, str]
    legs: list[tuple[dict[str, str], str]]
    exten: str
    context: str
    uuid: str = ""
    cause: str = ""  # why it failed (NO_ROUTE_DESTINATION: answered, but no extension)
    call: FakeCall | None = None  # answered and connected to the context's socket
    result: str = ""  # the BACKGROUND_JOB body
    done: asyncio.Event = field(default_factory=asyncio.Event)


def parse_dial_string(data: str) -> tuple[dict[str, str], list[tuple[dict[str, str], str]]]:
    """``{a=1,b=2}[c=3]ep1,[d=4]ep2`` → ({a, b}, [({c}, ep1), ({d}, ep2)]), as
    switch_ivr_originate splits it (commas inside brackets do not separate legs)."""
    def pairs(text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in filter(None, text.split(",")):
            name, _, value = item.partition("=")
            out[name] = value
        return out

    global_vars: dict[str, str] = {}
    if data.startswith("{"):
        end = data.index("}")
        global_vars, data = pairs(data[1:end]), data[end + 1:]
    legs: list[tuple[dict[str, str], str]] = []
    depth, current = 0, ""
    for ch in data + ",":
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            if current:
                leg_vars: dict[str, str] = {}
                if current.startswith("["):
                    end = current.index("]")
                    leg_vars, current = pairs(current[1:end]), current[end + 1:]
                legs.append((leg_vars, current))
            current = ""
        else:
            current += ch
    return global_vars, legs


class Originating:
    """The ``bgapi`` side of `FakeFreeSwitch`: dialplan contexts, originate attempts."""

    def load_dialplan(self, text: str) -> None:
        """The dialplan include FreeSWITCH would load: ``X-PRE-PROCESS cmd="set"`` variables
        are expanded where ``$${name}`` appears (the preprocessor works on the text), then each
        context keeps its extensions' ``destination_number`` expressions and ``socket`` data."""
        variables = dict(re.findall(r'<X-PRE-PROCESS\s+cmd="set"\s+data="([^"=]+)=([^"]*)"',
                                    text))
        text = re.sub(r"\$\$\{([^}]+)\}", lambda m: variables.get(m.group(1), ""), text)
        for context in ElementTree.fromstring(text).iter("context"):
            rules: list[tuple[str, str]] = []
            for condition in context.iter("condition"):
                if condition.get("field") != "destination_number":
                    continue
                rules += [(condition.get("expression", ""), action.get("data", ""))
                          for action in condition.iter("action")
                          if action.get("application") == "socket"]
            self.dialplan[context.get("name", "")] = rules

    def _route(self, context: str, exten: str) -> tuple[str, int] | None:
        """The ``socket`` address the first matching extension of `context` connects to."""
        for expression, data in self.dialplan.get(context, []):
            if re.search(expression, exten):
                host, _, port = data.split(" ")[0].rpartition(":")
                return host, int(port)
        return None

    def bgapi(self, block: str) -> bytes:
        """mod_event_socket's ``bgapi``: the job (its own thread) is started and the reply sent
        at once; the job's Job-UUID is the ``Job-UUID`` header's, else a new one."""
        first, *lines = block.split("\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        job = headers.get("job-uuid") or str(uuid_module.uuid4())
        name, _, arg = first[len("bgapi "):].strip().partition(" ")
        task = asyncio.get_running_loop().create_task(self._run_job(job, name, arg))
        self._call_tasks.append(task)
        return (b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: %s\nJob-UUID: %s\n\n"
                % (job.encode(), job.encode()))

    async def _run_job(self, job: str, name: str, arg: str) -> None:
        """api_exec: run the command, then fire BACKGROUND_JOB with its output as the body."""
        body = await self._originate(job, arg) if name == "originate" else self.api(
            f"{name} {arg}")
        lines = [*core_prolog("BACKGROUND_JOB", self.now_us(), self.next_sequence(),
                               ("mod_event_socket.c", "api_exec", "1572")),
                 ("Job-UUID", job),
                 ("Job-Owner-UUID", "_undef_"),  # no session on an inbound connection: ""
                 ("Job-Command", name)]
        if arg:
            lines.append(("Job-Command-Arg", arg))
        self.fire(lines, body)
        for attempt in self.originates:
            if attempt.job == job:
                attempt.result = body
                attempt.done.set()

    async def _originate(self, job: str, arg: str) -> str:
        """``originate <dial string> <exten> [<dialplan>] [<context>] …``: one endpoint rings
        as its `Callee` says; answered, the channel is transferred to ``<exten>`` in
        ``<context>`` and connects to that context's socket. Returns mod_commands' reply."""
        argv = arg.split(" ")
        if not 2 <= len(argv) <= 7:
            return f"-USAGE: {ORIGINATE_SYNTAX}\n"
        global_vars, legs = parse_dial_string(argv[0])
        context = argv[3] if len(argv) > 3 else "default"
        attempt = OriginateAttempt(job, arg, global_vars, legs, argv[1], context)
        self.originates.append(attempt)
        if len(legs) != 1:
            attempt.cause = "INVALID_NUMBER_FORMAT"  # the adapter never dials more than one
            return f"-ERR {attempt.cause}\n"
        leg_vars, endpoint = legs[0]
        variables = {**global_vars, **leg_vars}
        uuid = attempt.uuid = variables.get("origination_uuid") or str(uuid_module.uuid4())
        timeout = 60
        if variables.get("originate_timeout", "").isdigit():
            timeout = int(variables["originate_timeout"])
        callee = self.callee_for(endpoint)
        if callee.reject is not None:
            after, outcome = callee.fail_after, callee.reject
        elif callee.answer_after is not None and callee.answer_after < timeout:
            after, outcome = callee.answer_after, "answer"
        else:
            after, outcome = float(timeout), "NO_ANSWER"
        # A callee that answers or never does rings first (a busy or failing one does not).
        ring_at = min(RING_AFTER, after / 2) if callee.reject is None else None
        killed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ringing.add(uuid)
        self.ringing_kills[uuid] = killed
        try:
            if ring_at is not None and not await self._killed(killed, ring_at):
                self._ring(uuid, endpoint, variables)
                after -= ring_at
            await self._killed(killed, after)
        finally:
            self.ringing.discard(uuid)
            self.ringing_kills.pop(uuid, None)
        if killed.done():
            outcome = killed.result()
        if outcome != "answer":
            attempt.cause = outcome
            return f"-ERR {outcome}\n"
        self._answered(attempt, uuid, endpoint, variables, callee)
        return f"+OK {uuid}\n"

    async def _killed(self, killed: asyncio.Future[str], seconds: float) -> bool:
        """Wait `seconds` of call time; True as soon as a test ended the ringing channel."""
        done, _ = await asyncio.wait({killed}, timeout=max(0.0, seconds) * self.scale)
        return bool(done)

    def _ring(self, uuid: str, endpoint: str, variables: dict[str, str]) -> None:
        """The callee rings: the originated channel's CHANNEL_PROGRESS (180; or
        CHANNEL_PROGRESS_MEDIA for a 183, `ring_events`), as switch_channel.c fires them for
        an outbound channel still in the originate (see `OriginatedChannel.ringing`)."""
        channel = OriginatedChannel.ringing(
            uuid=uuid, endpoint=endpoint, variables=variables, created_us=self.now_us())
        for name in self.ring_events.get(callee_key(endpoint), ("CHANNEL_PROGRESS",)):
            now = self.now_us()
            if name == "CHANNEL_PROGRESS":
                channel.progress_us = channel.progress_us or now
                calling = ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value",
                           "3505")
                lines = channel.event_lines(name, timestamp_us=now,
                                            sequence=self.next_sequence(), calling=calling)
                channel.call_state = "RINGING"  # set after the event is made
            else:
                channel.progress_media_us = now
                channel.answer_state = "early"  # CF_EARLY_MEDIA is set before the event
                calling = ("switch_channel.c", "switch_channel_perform_mark_pre_answered",
                           "3560")
                lines = channel.event_lines(name, timestamp_us=now,
                                            sequence=self.next_sequence(), calling=calling)
                channel.call_state = "EARLY"
            self.fire(lines)

    def _answered(self, attempt: OriginateAttempt, uuid: str, endpoint: str,
                  variables: dict[str, str], callee: Callee) -> None:
        """switch_ivr_session_transfer to ``<exten> XML <context>``; its ``socket`` action."""
        route = self._route(attempt.context, attempt.exten)
        socket_data = f"{route[0]}:{route[1]} async full" if route else ""
        channel = OriginatedChannel(
            uuid=uuid, destination=attempt.exten,
            caller_number=variables.get("origination_caller_id_number", "0000000000"),
            caller_name=variables.get("origination_caller_id_name", ""),
            channel_name=endpoint, created_us=self.now_us(),
            variables=[("direction", "outbound"), ("uuid", uuid), ("session_id", "11"),
                       ("channel_name", endpoint), ("read_codec", "L16"), ("read_rate", "8000"),
                       ("write_codec", "L16"), ("write_rate", "8000"), *variables.items(),
                       ("call_uuid", uuid), ("current_application_data", socket_data),
                       ("current_application", "socket"),
                       ("socket_host", route[0] if route else "")],
            callee=("Outbound Call", callee_key(endpoint)), context=attempt.context,
            source="mod_sofia",
        )
        channel.answer_state, channel.call_state = "answered", "ACTIVE"
        channel.answered_us = self.now_us()
        if route is None:  # no extension matches: the dialplan hangs the channel up
            attempt.cause = "NO_ROUTE_DESTINATION"
            return
        call = FakeCall(self, channel, notice_first=False)
        call.caller_tone_hz = callee.tone_hz  # what the channel reads: the callee's audio
        self.calls[uuid] = call
        attempt.call = call
        loop = asyncio.get_running_loop()
        self._call_tasks.append(loop.create_task(call.run(*route)))
        if callee.talk_s is not None:
            self._call_tasks.append(loop.create_task(self._callee_hangs_up(call, callee.talk_s)))

    async def _callee_hangs_up(self, call: FakeCall, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)
        call.caller_hangup("NORMAL_CLEARING")
