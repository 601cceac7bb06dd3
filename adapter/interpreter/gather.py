"""`<Gather input="dtmf">` on a live call, as Twilio documents it.

The nested `<Say>`, `<Play>` and `<Pause>` run in order and the caller's first key stops them
(barge-in): it is the first key of the input. Then keys are collected until `numDigits` of
them, the `finishOnKey` key (not part of ``Digits``), or `timeout` seconds without a key. The
PBX does two things for it (`CallControl.play_until_key`, `CallControl.wait_for_key`); the
rules are all here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from adapter import twiml
from adapter.interpreter.context import SessionContext
from adapter.interpreter.prompting import prompt_file, repeats
from adapter.pbx.base import CallControl

__all__ = ["collect_digits"]

# How a PBX command of the running document is sent (`CallSession._pbx`).
Send = Callable[[Coroutine[Any, Any, str | None]], Awaitable[str | None]]


async def collect_digits(ctx: SessionContext, call: CallControl, verb: twiml.Gather, url: str,
                         *, send: Send, call_sid: str) -> str:
    """The caller's ``Digits`` for `verb` (``""``: no input); `url` is the document's."""
    key = await _prompts(ctx, call, verb, url, send=send, call_sid=call_sid)
    digits = ""
    while True:
        if key is None:
            key = await send(call.wait_for_key(verb.timeout))
            if key is None:
                return digits  # timeout
        if verb.finish_on_key and key == verb.finish_on_key:
            return digits
        digits += key
        if verb.num_digits is not None and len(digits) >= verb.num_digits:
            return digits
        key = None


async def _prompts(ctx: SessionContext, call: CallControl, verb: twiml.Gather, url: str,
                   *, send: Send, call_sid: str) -> str | None:
    """Play the nested verbs in order; the key that stopped them, or None."""
    for prompt in verb.prompts:
        if isinstance(prompt, twiml.Pause):
            key = await send(call.wait_for_key(prompt.length))
            if key is not None:
                return key
            continue
        if isinstance(prompt, twiml.Play) and prompt.digits:
            await send(call.send_digits(prompt.digits))
        path = await prompt_file(ctx, prompt, url, call_sid)
        if path is None:
            continue
        for _ in range(repeats(prompt.loop)):
            key = await send(call.play_until_key(path))
            if key is not None:
                return key
    return None
