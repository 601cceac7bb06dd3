"""`<Start>`/`<Stop>` with `<Recording>`, and `<Dial>` with numbers and SIP URIs: typed verbs,
Twilio's defaults, and the right codes for bad values."""

from __future__ import annotations

from twilio.twiml.voice_response import Recording, Start, Stop, VoiceResponse

from adapter.twiml import (
    Dial,
    DialTarget,
    StartRecording,
    StopRecording,
    Unsupported,
    check_document,
    parse_document,
)


def parse(response: VoiceResponse | str) -> tuple[object, ...]:
    return parse_document(str(response).encode(), "text/xml").verbs


def codes(text: str) -> list[int]:
    return [f.code for f in check_document(text.encode(), "text/xml")]


def test_start_recording_defaults() -> None:
    start = Start()
    start.recording()
    response = VoiceResponse()
    response.append(start)
    assert parse(response) == (StartRecording(
        name=None, recording_status_callback=None, recording_status_callback_method="POST",
        recording_status_callback_event=frozenset({"completed"}), trim="trim-silence",
        track="both", channels="dual",
    ),)


def test_start_recording_every_attribute_and_several_nouns() -> None:
    start = Start()
    start.recording(name="a", recording_status_callback="/cb",
                    recording_status_callback_method="GET",
                    recording_status_callback_event="in-progress completed absent",
                    trim="do-not-trim", track="inbound", channels="mono")
    start.recording(name="b")
    response = VoiceResponse()
    response.append(start)
    first, second = parse(response)
    assert first == StartRecording("a", "/cb", "GET",
                                   frozenset({"in-progress", "completed", "absent"}),
                                   "do-not-trim", "inbound", "mono")
    assert isinstance(second, StartRecording) and second.name == "b"


def test_stop_recording_and_other_nouns() -> None:
    stop = Stop()
    stop.append(Recording(name="a"))
    stop.stream(name="s")
    response = VoiceResponse()
    response.append(stop)
    assert parse(response) == (StopRecording("a"), Unsupported("Stop/Stream", (("name", "s"),)))


def test_bad_recording_values_fall_back_with_warnings() -> None:
    text = ('<Response><Start><Recording track="left" channels="quad" trim="x" '
            'recordingStatusCallbackEvent="done"/></Start></Response>')
    assert codes(text).count(12200) == 3
    assert 13621 in codes(text)  # the invalid event list is fatal, as for <Record>


def test_dial_defaults_and_plain_number() -> None:
    response = VoiceResponse()
    response.dial("(415) 555-1212")
    assert parse(response) == (Dial(
        targets=(DialTarget("number", "4155551212"),), action=None, method="POST", timeout=30,
        caller_id=None, time_limit=14400, hangup_on_star=False, answer_on_bridge=False,
        record="do-not-record",
    ),)


def test_dial_numbers_and_sip_ring_together() -> None:
    response = VoiceResponse()
    dial = response.dial(action="/dialed", method="GET", timeout=12, caller_id="+15550001111")
    dial.number("+15551230000", send_digits="ww1")
    dial.sip("sip:alice@pbx.example.com;transport=tcp")
    dial.sip("bob@10.0.0.5:5070")
    (verb,) = parse(response)
    assert isinstance(verb, Dial)
    assert verb.targets == (
        DialTarget("number", "+15551230000", "ww1"),
        DialTarget("sip", "sip:alice@pbx.example.com;transport=tcp"),
        DialTarget("sip", "sip:bob@10.0.0.5:5070"),
    )
    assert (verb.action, verb.method, verb.timeout, verb.caller_id) == (
        "/dialed", "GET", 12, "+15550001111")


def test_dial_bad_values() -> None:
    assert 13212 in codes('<Response><Dial timeout="2">100</Dial></Response>')
    assert 13214 in codes('<Response><Dial callerId="a b">100</Dial></Response>')
    assert 13223 in codes("<Response><Dial>call me maybe</Dial></Response>")
    assert 13243 in codes("<Response><Dial><Sip>sip:a@b,Hangup()</Sip></Dial></Response>")
    assert 13215 in codes("<Response><Dial><Say>hi</Say>100</Dial></Response>")
    # Nothing left to call: the verb is skipped, with a warning.
    assert parse("<Response><Dial><Sip>not a uri</Sip></Dial></Response>") == ()


def test_dial_record_is_a_recording_of_the_parent_call() -> None:
    response = VoiceResponse()
    response.dial("+15551230000", record="record-from-ringing-dual",
                  recording_status_callback="/dial-rec", recording_status_callback_method="GET",
                  recording_status_callback_event="in-progress completed absent",
                  trim="trim-silence", recording_track="inbound")
    (verb,) = parse(response)
    assert isinstance(verb, Dial)
    assert verb.record == "record-from-ringing-dual" and verb.records_from_ringing
    assert verb.recording == StartRecording(
        name=None, recording_status_callback="/dial-rec", recording_status_callback_method="GET",
        recording_status_callback_event=frozenset({"in-progress", "completed", "absent"}),
        trim="trim-silence", track="inbound", channels="dual")


def test_dial_record_defaults_mono_from_answer_untrimmed() -> None:
    response = VoiceResponse()
    response.dial("+15551230000", record="record-from-answer")
    (verb,) = parse(response)
    assert isinstance(verb, Dial)
    assert not verb.records_from_ringing
    assert verb.recording == StartRecording(
        name=None, recording_status_callback=None, recording_status_callback_method="POST",
        recording_status_callback_event=frozenset({"completed"}), trim="do-not-trim",
        track="both", channels="mono")
    # The older spellings: "true" records from the answer, "false" not at all.
    (aliased,) = parse('<Response><Dial record="true">+15551230000</Dial></Response>')
    assert isinstance(aliased, Dial) and aliased.record == "record-from-answer"
    (off,) = parse('<Response><Dial record="false">+15551230000</Dial></Response>')
    assert isinstance(off, Dial) and off.record == "do-not-record" and off.recording is None


def test_dial_record_bad_values() -> None:
    # 13217 (a warning): not recorded, the call is dialed.
    text = '<Response><Dial record="always">+15551230000</Dial></Response>'
    assert codes(text) == [13217]
    (verb,) = parse(text)
    assert isinstance(verb, Dial) and verb.recording is None
    assert 13256 in codes('<Response><Dial record="record-from-answer" '
                          'recordingStatusCallback="ftp://x/y">100</Dial></Response>')
    # A bad recordingStatusCallbackEvent is Twilio's 13621, fatal.
    findings = check_document(b'<Response><Dial record="record-from-answer" '
                              b'recordingStatusCallbackEvent="done">100</Dial></Response>',
                              "text/xml")
    assert [(f.code, f.fatal) for f in findings] == [(13621, True)]
    assert codes('<Response><Dial trim="cut" recordingTrack="left">100</Dial></Response>') == [
        12200, 12200]
