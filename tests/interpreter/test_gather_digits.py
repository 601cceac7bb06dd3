"""`adapter.interpreter.gather.collect_digits`, the `<Gather>` rules the two PBXs share, against a
scripted call: which keys end the prompts and the collection, and what ``Digits`` is."""

from __future__ import annotations

from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from adapter.interpreter.context import SessionContext
from adapter.interpreter.gather import collect_digits
from adapter.pbx.base import CallControl
from adapter.twiml import Gather, Pause, Play, Say

T = TypeVar("T")
PROMPT = Path("/spool/prompt.wav")


class ScriptedCall:
    """Answers each play/wait with the next key of `keys` (None: no key) and logs the calls."""

    def __init__(self, *keys: str | None) -> None:
        self.keys = deque(keys)
        self.log: list[str] = []

    async def play_until_key(self, path: Path) -> str | None:
        self.log.append(f"play {path.name}")
        return self.keys.popleft() if self.keys else None

    async def wait_for_key(self, seconds: int) -> str | None:
        self.log.append(f"wait {seconds}")
        return self.keys.popleft() if self.keys else None

    async def send_digits(self, digits: str) -> None:
        self.log.append(f"send {digits}")


class Prompts:
    async def say(self, text: str, *, voice: str | None, language: str | None) -> Path:
        return PROMPT

    async def play(self, url: str) -> Path:
        return PROMPT


async def send(command: Coroutine[Any, Any, T]) -> T:
    return await command


def gather(*prompts: Say | Play | Pause, **changes: Any) -> Gather:
    values: dict[str, Any] = dict(action=None, method="POST", timeout=5, finish_on_key="#",
                                  num_digits=None, action_on_empty_result=False)
    values.update(changes)
    return Gather(prompts=prompts, **values)


async def digits(verb: Gather, call: ScriptedCall) -> str:
    ctx = cast(SessionContext, type("Ctx", (), {"prompts": Prompts()})())
    return await collect_digits(ctx, cast(CallControl, call), verb, "http://app/voice",
                                send=send, call_sid="CA1")


SAY = Say(text="Enter it", voice=None, language=None, loop=1)


@pytest.mark.parametrize(("keys", "changes", "expected", "log"), [
    # the first key cuts the prompt and is the first digit; # ends it, not a digit
    (("1", "2", "#"), {}, "12", ["play prompt.wav", "wait 5", "wait 5"]),
    # the prompt plays out, then the timeout with no key: no input
    ((None, None), {}, "", ["play prompt.wav", "wait 5"]),
    # the finish key first: no digits
    (("#",), {}, "", ["play prompt.wav"]),
    # numDigits ends it without waiting for more
    (("4", "5", "6", "7"), {"num_digits": 3}, "456", ["play prompt.wav", "wait 5", "wait 5"]),
    # finishOnKey="": # is a digit; the timeout ends it
    (("1", "#", None), {"finish_on_key": ""}, "1#", ["play prompt.wav", "wait 5", "wait 5"]),
    # another finish key
    (("9", "*"), {"finish_on_key": "*", "timeout": 2}, "9", ["play prompt.wav", "wait 2"]),
])
async def test_keys_to_digits(keys: tuple[str | None, ...], changes: dict[str, Any],
                              expected: str, log: list[str]) -> None:
    call = ScriptedCall(*keys)
    assert await digits(gather(SAY, **changes), call) == expected
    assert call.log == log


async def test_prompts_play_in_order_and_a_key_stops_the_rest() -> None:
    call = ScriptedCall(None, None, "3", None)
    verb = gather(Say(text="a", voice=None, language=None, loop=2), Pause(length=2),
                  Play(url="/b.wav", loop=1, digits="1w2"), SAY)
    assert await digits(verb, call) == "3"
    assert call.log == ["play prompt.wav", "play prompt.wav", "wait 2", "wait 5"]


async def test_play_digits_are_sent_before_its_audio() -> None:
    call = ScriptedCall()
    assert await digits(gather(Play(url="/b.wav", loop=1, digits="12")), call) == ""
    assert call.log == ["send 12", "play prompt.wav", "wait 5"]


async def test_no_prompts_waits_for_the_first_key() -> None:
    call = ScriptedCall("8", None)
    assert await digits(gather(), call) == "8"
    assert call.log == ["wait 5", "wait 5"]
