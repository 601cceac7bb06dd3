"""Outbound REST calls on the real FreeSWITCH of the test session, as a test observes them
(tests/labs/freeswitch_lab.py's `RealFreeSwitch`: its own inbound ESL connection, which sees every
API, BACKGROUND_JOB and channel event, whoever caused it).

When the adapter originates ``loopback/2000/lab``, mod_loopback makes two legs: A
(``loopback/2000-a``, Unique-ID = the adapter's ``origination_uuid``) is the outbound call's
channel, transferred into ``twiml-outbound`` once answered and handed to the adapter on the
dialplan's socket; B (``loopback/2000-b``) runs lab.xml's callee ``2000``: the far end.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from dataclasses import dataclass

from freeswitch_lab import LAB_CONTEXT, RealFreeSwitch

from adapter.pbx.freeswitch.escape import esl_caller_id
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = ["Originated", "job_result", "originated", "place_raw_call", "reached_adapter"]

_ORIGINATE = re.compile(r"originate \{origination_uuid=([0-9a-f-]{36}),.* XML twiml-outbound")
_VARIABLE = re.compile(r"[a-z_]{1,32}=[A-Za-z0-9+_.-]{1,64}")
_TO = re.compile(r"\+?[0-9]{1,20}|CA[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Originated:
    """One ``originate`` FreeSWITCH ran for the adapter (from its API event)."""

    channel: str  # the origination_uuid: the outbound call's channel (leg A)
    command: str  # as FreeSWITCH ran it: "originate {...}<endpoint> <CallSid> XML twiml-outbound"


def _originates(commands: list[str]) -> list[Originated]:
    found = (_ORIGINATE.fullmatch(c) for c in commands)
    return [Originated(m.group(1), m.group(0)) for m in found if m is not None]


async def originated(fs: RealFreeSwitch, *, at_least: int = 0,
                     call_sid: str | None = None) -> list[Originated]:
    """The originates FreeSWITCH ran so far (once every earlier api command has been seen, and
    at least `at_least` of them); with `call_sid`, only those of that call (its CallSid is the
    originate's extension)."""

    def found(commands: list[str]) -> list[Originated]:
        return [o for o in _originates(commands)
                if call_sid is None or f" {call_sid} XML twiml-outbound" in o.command]

    return found(await fs.api_commands_so_far(lambda commands: len(found(commands)) >= at_least))


async def job_result(fs: RealFreeSwitch, channel: str, within: float = 30.0) -> EslEvent:
    """The BACKGROUND_JOB of the originate whose channel is `channel` (its body: ``+OK <uuid>``
    or ``-ERR <CAUSE>``)."""
    return await fs.wait_event(
        lambda e: e.name == "BACKGROUND_JOB"
        and f"origination_uuid={channel}," in e.get("Job-Command-Arg"), within=within)


def reached_adapter(fs: RealFreeSwitch, channel: str) -> bool:
    """Whether `channel` ran the dialplan's ``socket`` application (was handed to the adapter);
    call `fs.sync()` first."""
    return bool(fs.seen(lambda e: e.name == "CHANNEL_EXECUTE" and e.unique_id == channel
                        and e.get("Application") == "socket"))


async def place_raw_call(fs: RealFreeSwitch, *, to: str, context: str, from_: str,
                         variables: dict[str, str] | None = None) -> str:
    """A loopback call whose B leg runs `to` in `context` (``twiml``, ``twiml-outbound``) and
    carries `variables` (mod_loopback copies the originate's variables to B); A parks in
    lab.xml's ``caller``. For what `RealFreeSwitch.place_call` does not offer: a trunk call with
    a forged ``twiml_call_sid``, a call put straight into the outbound context. Returns A's
    uuid; hang it up with ``uuid_kill`` when done (the test's RealFreeSwitch does not track it).
    """
    if context not in ("twiml", "twiml-outbound") or not _TO.fullmatch(to):
        raise ValueError(f"{to!r} in {context!r}")
    a_uuid = str(uuid_module.uuid4())
    extra = [f"{name}={value}" for name, value in (variables or {}).items()]
    if not all(_VARIABLE.fullmatch(item) for item in extra):
        raise ValueError(f"variables {extra!r}")
    settings = ",".join([f"origination_uuid={a_uuid}",
                         f"origination_caller_id_number={esl_caller_id(from_)}", *extra])
    reply = await fs.api(f"bgapi originate {{{settings}}}loopback/{to}/{context} caller XML "
                         f"{LAB_CONTEXT}")
    assert reply.startswith("+OK"), reply
    return a_uuid
