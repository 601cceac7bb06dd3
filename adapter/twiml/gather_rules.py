"""Validation of ``<Gather>``: its attributes, and the ``<Say>``, ``<Play>``, ``<Pause>`` it plays.

Every ``input`` Twilio documents runs (``dtmf``, ``speech``, ``dtmf speech``; another value is
12200 and ``dtmf``). ``speechTimeout`` (13327), ``maxSpeechTime`` (13328), ``language`` (13331:
not a language-REGION tag such as ``en-US``) and ``profanityFilter`` (12200) are checked; the
recognizer tuning attributes (`GATHER_IGNORED_ATTRIBUTES`) are accepted and have no effect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from adapter.twiml import codes
from adapter.twiml import rule_table as rules
from adapter.twiml.attributes import integer_parser
from adapter.twiml.element import Element, source_line
from adapter.twiml.findings import finding
from adapter.twiml.prompt_rules import SAY_IN_GATHER, pause_verb, play_verb, say_verb
from adapter.twiml.rule_table import RuleTable
from adapter.twiml.verbs import Gather, Pause, Play, Say

__all__ = [
    "GATHER_DEFAULT_FINISH_ON_KEY",
    "GATHER_DEFAULT_INPUT",
    "GATHER_DEFAULT_LANGUAGE",
    "GATHER_DEFAULT_MAX_SPEECH_TIME",
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
GATHER_DEFAULT_LANGUAGE = "en-US"
GATHER_DEFAULT_MAX_SPEECH_TIME = 60  # Twilio's maxSpeechTime default, in seconds
GATHER_KEYS = frozenset("0123456789#*")  # 13310: finishOnKey is one of these, or ""
# Twilio's <Gather> attributes that tune its recognizer (or are old): accepted, no effect here.
GATHER_IGNORED_ATTRIBUTES = (
    "partialResultCallback", "partialResultCallbackMethod", "speechModel", "enhanced",
    "bargeIn", "debug",
)
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}-[A-Za-z0-9]{2,8}")
_NESTED: Mapping[str, Callable[[Element], Say | Play | Pause | None]] = {
    "Say": lambda el: say_verb(el, SAY_IN_GATHER),
    "Play": play_verb,
    "Pause": pause_verb,
}


def _finish_key(raw: str) -> str | None:
    return raw if raw == "" or (len(raw) == 1 and raw in GATHER_KEYS) else None


def _speech_timeout(raw: str) -> str | None:
    return raw if raw == "auto" or (raw.isdigit() and int(raw) > 0) else None


def _language(raw: str) -> str | None:
    return raw if _LANGUAGE_RE.fullmatch(raw) else None


# <Gather>'s attributes in the order Twilio documents them.
GATHER = RuleTable(
    rules.choice("input", GATHER_INPUTS, GATHER_DEFAULT_INPUT),
    rules.url("action", codes.INVALID_URL_FORMAT),
    rules.method("method", codes.GATHER_INVALID_METHOD, GATHER_DEFAULT_METHOD),
    rules.integer("timeout", codes.GATHER_INVALID_TIMEOUT, GATHER_DEFAULT_TIMEOUT, minimum=1),
    rules.value("finishOnKey", _finish_key, codes.GATHER_INVALID_FINISH_ON_KEY,
          GATHER_DEFAULT_FINISH_ON_KEY,
          f"is not one of 0-9, # and * (or empty); using {GATHER_DEFAULT_FINISH_ON_KEY}"),
    rules.value("numDigits", integer_parser(minimum=1), codes.GATHER_INVALID_NUM_DIGITS, None,
          "is not a whole number of at least 1; using no limit"),
    rules.boolean("actionOnEmptyResult", codes.GATHER_INVALID_ACTION_ON_EMPTY_RESULT, False),
    rules.value("speechTimeout", _speech_timeout, codes.GATHER_INVALID_SPEECH_TIMEOUT, None,
          "is not a positive whole number or auto; using timeout"),
    rules.integer("maxSpeechTime", codes.GATHER_INVALID_MAX_SPEECH_TIME,
            GATHER_DEFAULT_MAX_SPEECH_TIME, minimum=1),
    rules.value("language", _language, codes.GATHER_INVALID_LANGUAGE, GATHER_DEFAULT_LANGUAGE,
          f"is not a language tag such as en-US; using {GATHER_DEFAULT_LANGUAGE}"),
    rules.boolean("profanityFilter", codes.SCHEMA_VALIDATION_WARNING, True),
    rules.as_written("hints", ""),
    *(rules.as_written(attribute) for attribute in GATHER_IGNORED_ATTRIBUTES),
)


def gather_verb(el: Element) -> Gather:
    """``<Gather>``: its attributes in the order Twilio documents them, then its prompts."""
    (input_, action, method_, timeout, finish_on_key, num_digits, action_on_empty_result,
     speech_timeout, max_speech_time, language, profanity_filter, hints,
     *_ignored) = GATHER.read(el)
    el.report_text()
    return Gather(
        prompts=_prompts(el),
        action=action,
        method=method_,
        timeout=timeout,
        finish_on_key=finish_on_key,
        num_digits=num_digits,
        action_on_empty_result=action_on_empty_result,
        input=input_,
        speech_timeout=speech_timeout,
        max_speech_time=max_speech_time,
        language=language,
        profanity_filter=profanity_filter,
        hints=hints,
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

