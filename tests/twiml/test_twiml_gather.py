"""`<Gather>` validation: its attributes and defaults, Twilio's codes for bad values, what may
be nested, and the speech attributes of ``input="speech"`` / ``"dtmf speech"``."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import pytest
from twilio.twiml.voice_response import VoiceResponse

from adapter.twiml import (
    Document,
    Finding,
    Gather,
    Pause,
    Play,
    Say,
    TwimlError,
    check_document,
    parse_document,
    unsupported_reached,
)

XML = "text/xml"


def parse(body: str | VoiceResponse) -> Document:
    return parse_document(str(body).encode(), XML)


def gather_with(attribute: str, value: str) -> tuple[Gather, tuple[Finding, ...]]:
    document = parse(f"<Response><Gather {attribute}={quoteattr(value)}/></Response>")
    (gather,) = document.verbs
    assert isinstance(gather, Gather)
    return gather, document.findings


def test_defaults() -> None:
    (gather,) = parse("<Response><Gather/></Response>").verbs
    assert gather == Gather(prompts=(), action=None, method="POST", timeout=5,
                            finish_on_key="#", num_digits=None, action_on_empty_result=False)


def test_the_sdk_s_gather_with_every_dtmf_attribute_and_its_prompts() -> None:
    response = VoiceResponse()
    gather = response.gather(input="dtmf", action="/menu", method="GET", timeout=3,
                             finish_on_key="*", num_digits=4, action_on_empty_result=True)
    gather.say("Enter your PIN", loop=2)
    gather.pause(length=2)
    gather.play("/beep.wav", loop=1)
    response.say("Goodbye")
    document = parse(response)
    assert document.findings == ()
    assert document.verbs == (
        Gather(prompts=(Say(text="Enter your PIN", voice=None, language=None, loop=2),
                        Pause(length=2), Play(url="/beep.wav", loop=1, digits=None)),
               action="/menu", method="GET", timeout=3, finish_on_key="*", num_digits=4,
               action_on_empty_result=True),
        Say(text="Goodbye", voice=None, language=None, loop=1),
    )


def test_empty_finish_on_key_is_allowed() -> None:
    gather, findings = gather_with("finishOnKey", "")
    assert gather.finish_on_key == "" and findings == ()


@pytest.mark.parametrize(
    ("attribute", "value", "code", "field", "fallback"),
    [
        ("finishOnKey", "A", 13310, "finish_on_key", "#"),
        ("finishOnKey", "#*", 13310, "finish_on_key", "#"),
        ("method", "PUT", 13312, "method", "POST"),
        ("timeout", "0", 13313, "timeout", 5),
        ("timeout", "soon", 13313, "timeout", 5),
        ("numDigits", "0", 13314, "num_digits", None),
        ("numDigits", "-2", 13314, "num_digits", None),
    ],
)
def test_invalid_values_get_twilio_s_warning_and_the_default(
    attribute: str, value: str, code: int, field: str, fallback: object
) -> None:
    gather, findings = gather_with(attribute, value)
    assert getattr(gather, field) == fallback
    assert [(f.code, f.fatal, f.attribute) for f in findings] == [(code, False, attribute)]
    assert "using" in findings[0].message and "using 0" not in findings[0].message


def test_invalid_action_on_empty_result_is_twilio_s_error_13338() -> None:
    with pytest.raises(TwimlError) as raised:
        parse('<Response><Gather actionOnEmptyResult="maybe"/></Response>')
    assert [f.code for f in raised.value.findings if f.fatal] == [13338]


def test_invalid_action_url_is_11100() -> None:
    findings = check_document(b'<Response><Gather action="ftp://x/y"/></Response>', XML)
    assert [(f.code, f.fatal) for f in findings] == [(11100, True)]


def test_the_sdk_s_speech_gather_with_every_speech_attribute() -> None:
    response = VoiceResponse()
    gather = response.gather(input="dtmf speech", action="/heard", language="en-GB",
                             hints="yes, no", speech_timeout="auto", profanity_filter=False,
                             partial_result_callback="/partial",
                             partial_result_callback_method="GET", speech_model="phone_call",
                             enhanced=True, barge_in=True, max_speech_time=30, num_digits=1)
    gather.say("Say yes or press one")
    document = parse(response)
    assert document.findings == ()
    (gather_verb,) = document.verbs
    assert gather_verb == Gather(
        prompts=(Say(text="Say yes or press one", voice=None, language=None, loop=1),),
        action="/heard", method="POST", timeout=5, finish_on_key="#", num_digits=1,
        action_on_empty_result=False, input="dtmf speech", speech_timeout="auto",
        max_speech_time=30, language="en-GB", profanity_filter=False, hints="yes, no")


def test_speech_defaults() -> None:
    response = VoiceResponse()
    response.gather(input="speech")
    (gather,) = parse(response).verbs
    assert isinstance(gather, Gather)
    assert (gather.input, gather.speech_timeout, gather.max_speech_time, gather.language,
            gather.profanity_filter, gather.hints) == ("speech", None, 60, "en-US", True, "")


@pytest.mark.parametrize("value", ["-1", "0", "1.5", "soon", ""])
def test_invalid_speech_timeout_is_13327_and_timeout_is_used(value: str) -> None:
    gather, findings = gather_with("speechTimeout", value)
    assert [(f.code, f.fatal, f.attribute) for f in findings] == [
        (13327, False, "speechTimeout")]
    assert gather.speech_timeout is None


@pytest.mark.parametrize("value", ["auto", "1", "10"])
def test_valid_speech_timeouts(value: str) -> None:
    gather, findings = gather_with("speechTimeout", value)
    assert findings == () and gather.speech_timeout == value


def test_invalid_max_speech_time_is_13328_and_60() -> None:
    gather, findings = gather_with("maxSpeechTime", "0")
    assert [(f.code, f.fatal) for f in findings] == [(13328, False)]
    assert gather.max_speech_time == 60


@pytest.mark.parametrize("value", ["en", "english", "en_US", "EN-US"])
def test_malformed_language_is_13331_and_en_us(value: str) -> None:
    gather, findings = gather_with("language", value)
    assert [(f.code, f.fatal, f.attribute) for f in findings] == [(13331, False, "language")]
    assert gather.language == "en-US"


def test_another_language_tag_is_accepted() -> None:
    gather, findings = gather_with("language", "fr-FR")
    assert findings == () and gather.language == "fr-FR"


def test_invalid_profanity_filter_is_12200_and_true() -> None:
    gather, findings = gather_with("profanityFilter", "maybe")
    assert [(f.code, f.attribute) for f in findings] == [(12200, "profanityFilter")]
    assert gather.profanity_filter is True


def test_unknown_attribute_is_12200() -> None:
    _, findings = gather_with("colour", "blue")
    assert [(f.code, f.attribute) for f in findings] == [(12200, "colour")]


def test_other_nested_verbs_are_13320_and_ignored() -> None:
    document = parse("<Response><Gather><Say>Hi</Say><Record/><Dial>+15551230000</Dial>"
                     "<Gather/></Gather></Response>")
    (gather,) = document.verbs
    assert isinstance(gather, Gather)
    assert gather.prompts == (Say(text="Hi", voice=None, language=None, loop=1),)
    assert [(f.code, f.fatal) for f in document.findings] == [(13320, False)] * 3


def test_nested_prompts_get_twilio_s_codes() -> None:
    document = parse('<Response><Gather><Say loop="x">Hi</Say><Pause length="-1"/></Gather>'
                     "</Response>")
    assert [f.code for f in document.findings] == [13322, 13910]  # Gather->Say: its own code


@pytest.mark.parametrize("input_", ["speech", "dtmf speech"])
def test_speech_inputs_run(input_: str) -> None:
    response = VoiceResponse()
    response.gather(input=input_, action="/heard")
    (verb,) = parse(response).verbs
    assert isinstance(verb, Gather) and verb.input == input_
    assert not unsupported_reached((verb,))


def test_unknown_input_is_12200_and_dtmf() -> None:
    gather, findings = gather_with("input", "keys")
    assert isinstance(gather, Gather)
    assert [(f.code, f.attribute) for f in findings] == [(12200, "input")]
