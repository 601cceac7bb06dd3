"""Parsing TwiML into typed verbs: documents built with Twilio's own helper library, content
types, and the safety rules (size, DOCTYPE/entities, XInclude, depth, encoding)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twilio.twiml.voice_response import Connect, VoiceResponse

from adapter.twiml import (
    Document,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    TwimlError,
    Unsupported,
    check_document,
    parse_document,
)
from adapter.twiml.parse import MAX_BODY_BYTES, MAX_DEPTH

XML = "text/xml"


def parse(response: VoiceResponse | str | bytes, content_type: str = XML) -> Document:
    if isinstance(response, VoiceResponse):
        body = str(response).encode("utf-8")
    elif isinstance(response, str):
        body = response.encode("utf-8")
    else:
        body = response
    return parse_document(body, content_type, url="https://app.example.com/voice")


def error_of(body: bytes, content_type: str | None = XML, url: str | None = None) -> TwimlError:
    with pytest.raises(TwimlError) as caught:
        parse_document(body, content_type, url=url)
    return caught.value


# --- Documents built with the official twilio library ---------------------------------------


def test_record_with_every_attribute() -> None:
    response = VoiceResponse()
    response.record(
        action="/recorded?step=1&lang=en",
        method="GET",
        timeout=0,
        finish_on_key="#*",
        max_length=90,
        play_beep=False,
        trim="do-not-trim",
        recording_status_callback="https://cb.example.com/status",
        recording_status_callback_method="GET",
        recording_status_callback_event="in-progress completed absent",
        transcribe=True,
        transcribe_callback="/transcribed",
    )
    document = parse(response)
    assert document.verbs == (
        Record(
            action="/recorded?step=1&lang=en",
            method="GET",
            timeout=0,
            finish_on_key="#*",
            max_length=90,
            play_beep=False,
            trim="do-not-trim",
            recording_status_callback="https://cb.example.com/status",
            recording_status_callback_method="GET",
            recording_status_callback_event=frozenset({"in-progress", "completed", "absent"}),
            transcribe=True,
            transcribe_callback="/transcribed",
        ),
    )
    assert document.findings == ()


def test_record_defaults_are_twilios() -> None:
    response = VoiceResponse()
    response.record()
    assert parse(response).verbs == (
        Record(
            action=None,
            method="POST",
            timeout=5,
            finish_on_key="1234567890*#",
            max_length=3600,
            play_beep=True,
            trim="trim-silence",
            recording_status_callback=None,
            recording_status_callback_method="POST",
            recording_status_callback_event=frozenset({"completed"}),
            transcribe=False,
            transcribe_callback=None,
        ),
    )


def test_transcribed_record_defaults_to_two_minutes() -> None:
    response = VoiceResponse()
    response.record(transcribe=True)
    (record,) = parse(response).verbs
    assert isinstance(record, Record)
    assert record.max_length == 120
    assert record.transcribe is True


def test_transcribe_callback_alone_does_not_turn_transcription_on() -> None:
    response = VoiceResponse()
    response.record(transcribe_callback="/t")
    (record,) = parse(response).verbs
    assert isinstance(record, Record)
    assert (record.transcribe, record.transcribe_callback, record.max_length) == (
        False,
        "/t",
        3600,
    )


def test_voicemail_example_from_twilio_docs_keeps_verb_order() -> None:
    response = VoiceResponse()
    response.say("Please leave a message at the beep.\nPress the star key when finished.")
    response.record(
        action="http://foo.edu/handleRecording.php", method="GET", max_length=20, finish_on_key="*"
    )
    response.say("I did not receive a recording")
    verbs = parse(response).verbs
    assert [type(v) for v in verbs] == [Say, Record, Say]
    first, record, last = verbs
    assert isinstance(first, Say) and first.text.startswith("Please leave a message")
    assert isinstance(record, Record)
    assert (record.action, record.method, record.max_length, record.finish_on_key) == (
        "http://foo.edu/handleRecording.php",
        "GET",
        20,
        "*",
    )
    assert isinstance(last, Say) and last.text == "I did not receive a recording"


def test_say_play_pause_hangup_redirect() -> None:
    response = VoiceResponse()
    response.say("Bonjour", voice="Polly.Celine", language="fr-FR", loop=3)
    response.say("Hello")
    response.play("https://media.example.com/cowbell.mp3", loop=0)
    response.play(digits="wwww3")
    response.pause(length=7)
    response.pause()
    response.redirect("../next?x=1&y=2", method="GET")
    response.redirect("/again")
    response.hangup()
    assert parse(response).verbs == (
        Say(text="Bonjour", voice="Polly.Celine", language="fr-FR", loop=3),
        Say(text="Hello", voice=None, language=None, loop=1),
        Play(url="https://media.example.com/cowbell.mp3", loop=0, digits=None),
        Play(url=None, loop=1, digits="wwww3"),
        Pause(length=7),
        Pause(length=1),
        Redirect(url="../next?x=1&y=2", method="GET"),
        Redirect(url="/again", method="POST"),
        Hangup(),
    )


def test_noun_urls_lose_only_surrounding_whitespace() -> None:
    document = parse(
        "<Response><Redirect>\n   ../nextInstructions?a=%20b\n</Redirect>"
        "<Play>\n  cowbell.mp3  </Play></Response>"
    )
    assert document.verbs == (
        Redirect(url="../nextInstructions?a=%20b", method="POST"),
        Play(url="cowbell.mp3", loop=1, digits=None),
    )


def test_say_with_ssml_is_flattened_to_its_text() -> None:
    response = VoiceResponse()
    say = response.say("Hi ")
    say.emphasis("there", level="strong")
    say.break_(time="1s")
    say.say_as("12345", interpret_as="digits")
    (verb,) = parse(response).verbs
    assert verb == Say(text="Hi there12345", voice=None, language=None, loop=1)


def test_known_twilio_verbs_not_implemented_parse_to_unsupported() -> None:
    response = VoiceResponse()
    response.append(Connect(action="/c"))
    dial = response.dial(timeout=10)
    dial.conference("room")
    response.say("after")
    document = parse(response)
    assert document.verbs == (
        Unsupported(name="Connect", attributes=(("action", "/c"),)),
        Unsupported(name="Dial/Conference", attributes=(("timeout", "10"),)),
        Say(text="after", voice=None, language=None, loop=1),
    )
    assert document.findings == ()


@pytest.mark.parametrize(
    "name", ["Connect", "Echo", "Enqueue", "Leave", "Pay", "Prompt", "Queue", "Refer", "Sms"]
)
def test_every_unimplemented_twilio_verb_is_unsupported(name: str) -> None:
    (verb,) = parse(f'<Response><{name} a="1"/></Response>').verbs
    assert verb == Unsupported(name=name, attributes=(("a", "1"),))


def test_empty_response_is_a_valid_empty_document() -> None:
    assert parse(VoiceResponse()) == Document(verbs=(), findings=())


def test_comments_and_processing_instructions_are_ignored() -> None:
    document = parse(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- page at /x -->\n'
        "<Response><!-- note --><?app hint?><Hangup/></Response>"
    )
    assert document == Document(verbs=(Hangup(),), findings=())


def test_utf16_document_with_declaration() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><Response><Say>héllo</Say></Response>'
    (say,) = parse(body.encode("utf-16")).verbs
    assert say == Say(text="héllo", voice=None, language=None, loop=1)


# --- Content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/xml", "application/xml", "text/html", "TEXT/XML; charset=UTF-8", "application/xml;q=1"],
)
def test_twiml_content_types(content_type: str) -> None:
    assert parse("<Response><Hangup/></Response>", content_type).verbs == (Hangup(),)


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "application/octet-stream", "text/xmlx", "audio/ogg"],
)
def test_other_content_types_are_12300(content_type: str | None) -> None:
    error = error_of(b"<Response><Hangup/></Response>", content_type)
    assert error.code == 12300


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/x-wav", "audio/ulaw"])
def test_audio_response_is_played_from_its_url(content_type: str) -> None:
    body = b"\xff\xfb" + bytes(200_000)  # audio is not held to the 64 kB TwiML limit
    document = parse_document(body, content_type, url="https://media.example.com/hello.mp3")
    assert document == Document(
        verbs=(Play(url="https://media.example.com/hello.mp3", loop=1, digits=None),), findings=()
    )


def test_audio_response_without_its_url_cannot_be_played() -> None:
    assert error_of(b"\xff\xfb", "audio/mpeg", url=None).code == 12300


def test_plain_text_response_is_said() -> None:
    document = parse("  Hello caller!\n", "text/plain; charset=utf-8")
    assert document.verbs == (Say(text="Hello caller!", voice=None, language=None, loop=1),)


def test_plain_text_in_its_declared_charset() -> None:
    body = "Grüße".encode("latin-1")
    document = parse_document(body, "text/plain; charset=ISO-8859-1")
    assert document.verbs == (Say(text="Grüße", voice=None, language=None, loop=1),)


def test_plain_text_that_does_not_decode_is_12100() -> None:
    assert error_of(b"caf\xe9", "text/plain").code == 12100


# --- Bad documents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"this is not xml",
        b"<Response><Say>unclosed</Response>",
        b"<Response><Say a=1>x</Say></Response>",
        b"<Response><Say>AT&T</Say></Response>",
        b'  <?xml version="1.0"?><Response/>',  # leading space before the declaration
        b"<Response/><Response/>",
    ],
)
def test_not_well_formed_is_12100(body: bytes) -> None:
    assert error_of(body).code == 12100


def test_root_must_be_response() -> None:
    error = error_of(b"<response><Say>hi</Say></response>")
    assert error.code == 12102
    assert [f.code for f in error.findings] == [12102]


def test_namespaced_response_is_not_response() -> None:
    assert error_of(b'<Response xmlns="urn:x"><Hangup/></Response>').code == 12102


def test_bad_encoding_is_12100() -> None:
    error = error_of(
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>\xff\xfe</Say></Response>'
    )
    assert error.code == 12100
    assert error.findings[0].line == 1


def test_unknown_encoding_is_12100() -> None:
    assert error_of(b'<?xml version="1.0" encoding="x-klingon"?><Response/>').code == 12100


def test_body_over_64_kb_is_11750_before_parsing() -> None:
    megabyte = b"<Response>" + b"<Say>x</Say>" * 90_000 + b"</Response>"
    assert len(megabyte) > 1_000_000
    error = error_of(megabyte)
    assert error.code == 11750
    # Rejected before parsing: even a body that is not XML at all gets 11750, not 12100.
    assert error_of(b"\x00" * (MAX_BODY_BYTES + 1)).code == 11750


def test_body_of_exactly_64_kb_is_parsed() -> None:
    head, tail = b"<Response><Hangup/>", b"</Response>"
    body = head + b" " * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(body) == MAX_BODY_BYTES
    assert parse(body).verbs == (Hangup(),)


def test_deep_nesting_is_12100() -> None:
    depth = MAX_DEPTH + 1  # Response plus MAX_DEPTH nested elements
    body = "<Response>" + "<Connect>" * (depth - 1) + "</Connect>" * (depth - 1) + "</Response>"
    error = error_of(body.encode())
    assert error.code == 12100
    assert "nested" in error.message


def test_nesting_at_the_limit_is_accepted() -> None:
    inner = MAX_DEPTH - 1
    body = "<Response>" + "<Connect>" * inner + "</Connect>" * inner + "</Response>"
    (verb,) = parse(body).verbs
    assert verb == Unsupported(name="Connect", attributes=())


def test_very_deep_nesting_stops_in_the_parser() -> None:
    body = b"<Response>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</Response>"
    assert error_of(body).code == 12100


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Response><Say>&lol9;</Say></Response>"""


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.thread_time()  # this thread's CPU: the machine's load cannot fail it
    error = error_of(BILLION_LAUGHS)
    assert time.thread_time() - started < 1.0  # refused without expanding the entities
    assert error.code == 12100
    assert "DOCTYPE" in error.message
    assert "lollol" not in repr(error.findings)


def test_billion_laughs_in_utf16_is_refused() -> None:
    body = BILLION_LAUGHS.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    assert error_of(body.encode("utf-16")).code == 12100


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-7f3a9c")
    return path


def _everything_visible(body: bytes) -> str:
    """Every text the parser could expose: findings, the error, a successful document."""
    shown = [repr(check_document(body, XML))]
    try:
        shown.append(repr(parse_document(body, XML)))
    except TwimlError as error:
        shown += [str(error), repr(error.findings)]
    return "\n".join(shown)


def test_external_entity_is_never_read(secret_file: Path) -> None:
    body = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>'
        "<Response><Say>&xxe;</Say></Response>"
    ).encode()
    assert error_of(body).code == 12100
    assert "TOP-SECRET" not in _everything_visible(body)


def test_external_parameter_entity_and_dtd_are_never_read(secret_file: Path) -> None:
    dtd = secret_file.parent / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "{secret_file.as_uri()}">')
    for body in (
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{dtd.as_uri()}"> %p;]><Response><Say>&leak;</Say>'
        "</Response>",
        f'<!DOCTYPE Response SYSTEM "{dtd.as_uri()}"><Response><Say>&leak;</Say></Response>',
    ):
        assert error_of(body.encode()).code == 12100
        assert "TOP-SECRET" not in _everything_visible(body.encode())


def test_xinclude_is_never_processed(secret_file: Path) -> None:
    body = (
        '<Response xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<Say>Hi <xi:include href="{secret_file.as_uri()}" parse="text"/></Say>'
        f'<xi:include href="{secret_file.as_uri()}" parse="text"/>'
        "</Response>"
    ).encode()
    document = parse(body)
    assert document.verbs == (Say(text="Hi", voice=None, language=None, loop=1),)
    assert {f.code for f in document.findings} == {12200}
    assert "TOP-SECRET" not in _everything_visible(body)


def test_doctype_is_refused_even_without_the_byte_scan(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    """Second line of defence: libxml2 resolves no entity, and the DOCTYPE is found after."""
    import adapter.twiml.parse as parse_module

    monkeypatch.setattr(parse_module, "_DOCTYPE_MARKERS", ())
    xxe = (
        f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>'
        "<Response><Say>&xxe;</Say></Response>"
    ).encode()
    assert error_of(BILLION_LAUGHS).code == 12100
    error = error_of(xxe)
    assert error.code == 12100
    assert "DOCTYPE" in error.message
    assert "TOP-SECRET" not in _everything_visible(xxe)
