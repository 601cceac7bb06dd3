"""Validation of ``<Gather>``: its attributes, and the ``<Say>``, ``<Play>``, ``<Pause>`` it plays.

Only ``input="dtmf"`` (the default) runs; ``speech`` and ``dtmf speech`` parse to `Unsupported`
(the call that reaches it gets error 12200 and the error prompt). The speech attributes are
accepted and ignored (``speechTimeout`` is still checked: 13327).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from adapter.twiml import codes
from adapter.twiml.attributes import parse_integer
from adapter.twiml.element import Element, source_line, unsupported
from adapter.twiml.findings import finding
from adapter.twiml.prompt_rules import pause_verb, play_verb, say_verb
from adapter.twiml.verbs import Gather, Pause, Play, Say, Unsupported

__all__ = [
    "GATHER_DEFAULT_FINISH_ON_KEY",
    "GATHER_DEFAULT_INPUT",
    "GATHER_DEFAULT_METHOD",
    "GATHER_DEFAULT_TIMEOUT",
    "GATHER_IGNORED_ATTRIBUTES",
    "GATHER_INPUTS",
    "GATHER_KEYS",
    "gather_verb",
]

GATHER_DEFAULT_METHOD = "POST"
GATHER_DEFAULT_TIMEOUT = 5
GATHER_DEFAULT_FINISH_ON_KEY = "#"
GATHER_DEFAULT_INPUT = "dtmf"
GATHER_INPUTS = frozenset({"dtmf", "speech", "dtmf speech"})
GATHER_KEYS = frozenset("0123456789#*")  # 13310: finishOnKey is one of these, or ""
# Twilio's <Gather> attributes for speech recognition (and old ones) that DTMF input ignores.
GATHER_IGNORED_ATTRIBUTES = (
    "language", "hints", "profanityFilter", "partialResultCallback",
    "partialResultCallbackMethod", "speechModel", "enhanced", "bargeIn", "debug",
    "maxSpeechTime",
)
_NESTED: Mapping[str, Callable[[Element], Say | Play | Pause | None]] = {
    "Say": lambda el: say_verb(el, codes.GATHER_SAY_INVALID_LOOP),
    "Play": play_verb,
    "Pause": pause_verb,
}


def _finish_key(raw: str) -> str | None:
    return raw if raw == "" or (len(raw) == 1 and raw in GATHER_KEYS) else None


def _speech_timeout(raw: str) -> str | None:
    return raw if raw == "auto" or (raw.isdigit() and int(raw) > 0) else None


def gather_verb(el: Element) -> Gather | Unsupported:
    """``<Gather>``: its attributes in the order Twilio documents them, then its prompts."""
    input_ = el.choice("input", GATHER_INPUTS, GATHER_DEFAULT_INPUT)
    if input_ != "dtmf":
        return unsupported(f'Gather input="{input_}"', el.element, el.element)
    action = el.url("action", codes.INVALID_URL_FORMAT)
    method = el.method("method", codes.GATHER_INVALID_METHOD, GATHER_DEFAULT_METHOD)
    timeout = el.integer("timeout", codes.GATHER_INVALID_TIMEOUT, GATHER_DEFAULT_TIMEOUT,
                         minimum=1)
    finish_on_key = el.value(
        "finishOnKey", _finish_key, codes.GATHER_INVALID_FINISH_ON_KEY,
        GATHER_DEFAULT_FINISH_ON_KEY,
        f"is not one of 0-9, # and * (or empty); using {GATHER_DEFAULT_FINISH_ON_KEY}",
    )
    num_digits = el.value(
        "numDigits", lambda raw: parse_integer(raw, minimum=1), codes.GATHER_INVALID_NUM_DIGITS,
        None, "is not a whole number of at least 1; using no limit",
    )
    action_on_empty_result = el.boolean(
        "actionOnEmptyResult", codes.GATHER_INVALID_ACTION_ON_EMPTY_RESULT, False
    )
    el.value("speechTimeout", _speech_timeout, codes.GATHER_INVALID_SPEECH_TIMEOUT, None,
             "is not a positive whole number or auto; ignored")
    for attribute in GATHER_IGNORED_ATTRIBUTES:
        el.take(attribute)
    el.report_unknown_attributes()
    el.report_text()
    return Gather(
        prompts=_prompts(el),
        action=action,
        method=method,
        timeout=timeout,
        finish_on_key=finish_on_key,
        num_digits=num_digits,
        action_on_empty_result=action_on_empty_result,
    )


def _prompts(el: Element) -> tuple[Say | Play | Pause, ...]:
    """The nested verbs Twilio allows, in order; any other element is 13320 and ignored."""
    prompts: list[Say | Play | Pause] = []
    for child in el.children():
        rules = _NESTED.get(str(child.tag))
        if rules is None:
            el.findings.append(finding(
                codes.GATHER_INVALID_NESTED_VERB,
                f"<{child.tag}> cannot be nested in <Gather> (only <Say>, <Play>, <Pause>); "
                "ignored",
                line=source_line(child), verb=el.name,
            ))
            continue
        prompt = rules(el.nested(child))
        if prompt is not None:
            prompts.append(prompt)
    return tuple(prompts)

