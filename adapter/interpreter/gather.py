"""`<Gather>` on a live call, as Twilio documents it: the action's parameters, or no input.

The nested `<Say>`, `<Play>` and `<Pause>` run in order. With ``dtmf`` in `input` the caller's
first key stops them (barge-in): it is the first key of the input. Then keys are collected until
`numDigits` of them, the `finishOnKey` key (not part of ``Digits``), or `timeout` seconds
without a key. With ``speech`` the caller's utterance is heard and recognised
(`adapter.interpreter.speech`): ``SpeechResult`` and ``Confidence``; with ``dtmf speech`` a key
(during the prompts or instead of speaking) wins and the input is ``Digits``. The PBX does
`CallControl.play_until_key`, `CallControl.wait_for_key` and `CallControl.record_utterance`
for it; the rules are all here. The input counts from the `<Gather>`'s start: a key pressed
while a prompt is fetched or synthesised counts too (`CallControl.forget_keys`).
"""

from __future__ import annotations

import itertools

from adapter import twiml
from adapter.interpreter.context import SessionContext
from adapter.interpreter.prompting import prompt_file, repeats
from adapter.interpreter.speech import Send, hear
from adapter.pbx.base import CallControl
from adapter.recordings import layout
from adapter.twiml.gather_rules import GATHER_KEYS

__all__ = ["Params", "collect_digits", "gather_input"]

Params = list[tuple[str, str]]

# Utterance file names, unique within this process (a call's gathers run one at a time).
_utterances = itertools.count(1)


async def gather_input(ctx: SessionContext, call: CallControl, verb: twiml.Gather, url: str,
                       *, send: Send, call_sid: str) -> Params | None:
    """The parameters the action is requested with (`url` is the document's), or None: no
    input and no `actionOnEmptyResult`, the next verb runs. An empty result requests the
    action with ``Digits=""`` when `input` has dtmf, with no input parameter for speech."""
    params = await _input(ctx, call, verb, url, send=send, call_sid=call_sid)
    if params is None and verb.action_on_empty_result:
        return [("Digits", "")] if "dtmf" in verb.input.split() else []
    return params


async def _input(ctx: SessionContext, call: CallControl, verb: twiml.Gather, url: str,
                 *, send: Send, call_sid: str) -> Params | None:
    dtmf = "dtmf" in verb.input.split()
    call.forget_keys()  # the keys pressed before the <Gather> do not count (as on Twilio)
    if "speech" not in verb.input.split():
        digits = await collect_digits(ctx, call, verb, url, send=send, call_sid=call_sid)
        return [("Digits", digits)] if digits else None
    key = await _prompts(ctx, call, verb, url, send=send, call_sid=call_sid, keys=dtmf)
    if key is None:
        path = layout.utterance_file(ctx.config.spool_dir_local, call_sid,
                                     str(next(_utterances)))
        heard = await hear(ctx, call, verb, path, send=send, call_sid=call_sid,
                           keys="".join(sorted(GATHER_KEYS)) if dtmf else "")
        if heard is None:
            return None
        if heard.key is None:
            return [("SpeechResult", heard.text), ("Confidence", f"{heard.confidence:.8f}")]
        key = heard.key
    digits = await _digits_from(key, call, verb, send=send)
    return [("Digits", digits)] if digits else None


async def collect_digits(ctx: SessionContext, call: CallControl, verb: twiml.Gather, url: str,
                         *, send: Send, call_sid: str) -> str:
    """The caller's ``Digits`` for `verb` (``""``: no input); `url` is the document's."""
    key = await _prompts(ctx, call, verb, url, send=send, call_sid=call_sid, keys=True)
    return await _digits_from(key, call, verb, send=send)


async def _digits_from(key: str | None, call: CallControl, verb: twiml.Gather, *,
                       send: Send) -> str:
    """Keys from `key` (the first, or None: wait for it) on, by `verb`'s rules."""
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
                   *, send: Send, call_sid: str, keys: bool) -> str | None:
    """Play the nested verbs in order; the key that stopped them (only with `keys`), or None."""
    for prompt in verb.prompts:
        if isinstance(prompt, twiml.Pause):
            if not keys:
                await send(call.pause(prompt.length))
                continue
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
            if not keys:
                await send(call.play(path))
                continue
            key = await send(call.play_until_key(path))
            if key is not None:
                return key
    return None
