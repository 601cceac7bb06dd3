"""Validation of a parsed TwiML tree: Twilio's nesting rules and attribute values.

`validate_tree` turns the ``<Response>`` element into typed verbs plus findings. A WARNING-level
finding means what Twilio does for it: the offending value is replaced by its documented
default (or the element is skipped) and the document goes on. An ERROR-level finding is fatal
for the whole document, which `adapter.twiml.parse` enforces before any verb runs.
"""

from __future__ import annotations

from lxml import etree

from adapter.addresses import CALLER_ID, PHONE_NUMBER, SIP_URI_SCHEME_OPTIONAL
from adapter.twiml import codes
from adapter.twiml.attributes import (
    is_fetchable_url,
    parse_bool,
    parse_dtmf,
    parse_events,
    parse_finish_keys,
    parse_integer,
    parse_method,
)
from adapter.twiml.codes import TwilioCode
from adapter.twiml.findings import Finding, finding
from adapter.twiml.verbs import (
    Dial,
    DialTarget,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    StartRecording,
    StopRecording,
    Unsupported,
    Verb,
)

__all__ = [
    "IMPLEMENTED_VERBS",
    "PAUSE_DEFAULT_LENGTH",
    "PLAY_DEFAULT_LOOP",
    "RECORD_DEFAULT_EVENTS",
    "RECORD_DEFAULT_FINISH_ON_KEY",
    "RECORD_DEFAULT_MAX_LENGTH",
    "RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED",
    "RECORD_DEFAULT_METHOD",
    "RECORD_DEFAULT_TIMEOUT",
    "RECORD_DEFAULT_TRIM",
    "RECORD_MAX_LENGTH_LIMIT",
    "RECORD_MAX_TRANSCRIBED_LENGTH",
    "RECORD_MIN_MAX_LENGTH",
    "RECORD_TRIM_VALUES",
    "REDIRECT_DEFAULT_METHOD",
    "SAY_DEFAULT_LOOP",
    "SAY_MAX_BYTES",
    "SSML_ELEMENTS",
    "UNSUPPORTED_VERBS",
    "source_line",
    "validate_tree",
]

IMPLEMENTED_VERBS = frozenset(
    {"Record", "Say", "Play", "Pause", "Hangup", "Redirect", "Start", "Stop", "Dial", "Reject"}
)
DIAL_DEFAULT_TIMEOUT = 30
DIAL_MIN_TIMEOUT = 5
DIAL_MAX_TIMEOUT = 600
DIAL_DEFAULT_TIME_LIMIT = 14400
DIAL_RECORD_VALUES = frozenset({
    "do-not-record", "record-from-answer", "record-from-ringing",
    "record-from-answer-dual", "record-from-ringing-dual", "true", "false",
})
# <Dial> nouns this adapter does not implement yet: the whole <Dial> is Unsupported.
DIAL_UNSUPPORTED_NOUNS = frozenset(
    {"Client", "Conference", "Queue", "Application", "WhatsApp", "Sim"}
)
_PHONE_PUNCTUATION = str.maketrans("", "", " ()-.")
RECORDING_TRACKS = frozenset({"inbound", "outbound", "both"})
RECORDING_CHANNELS = frozenset({"mono", "dual"})
RECORDING_DEFAULT_TRACK = "both"
RECORDING_DEFAULT_CHANNELS = "dual"
# Nouns of <Start>/<Stop> other than <Recording>: parsed to Unsupported("Start/<noun>").
START_NOUNS = frozenset({"Recording", "Stream", "Siprec", "Transcription", "ConversationRelay"})
# Twilio verbs (and nouns people put at the top level) that parse to Unsupported.
UNSUPPORTED_VERBS = frozenset(
    {
        "Connect",
        "Echo",
        "Enqueue",
        "Gather",
        "Leave",
        "Message",
        "Pay",
        "Prompt",
        "Queue",
        "Refer",
        "Sms",
    }
)
# SSML elements Twilio accepts inside <Say> (the twilio helper library's Say children).
SSML_ELEMENTS = frozenset(
    {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"}
)

RECORD_DEFAULT_METHOD = "POST"
RECORD_DEFAULT_TIMEOUT = 5
RECORD_DEFAULT_FINISH_ON_KEY = "1234567890*#"
RECORD_DEFAULT_MAX_LENGTH = 3600
RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED = 120
RECORD_MAX_TRANSCRIBED_LENGTH = 120
RECORD_MIN_MAX_LENGTH = 2  # "Integer greater than 1"
RECORD_MAX_LENGTH_LIMIT = 86400  # 24 h, the largest account call-duration limit
RECORD_DEFAULT_TRIM = "trim-silence"
RECORD_INVALID_TRIM_FALLBACK = "do-not-trim"  # 13699: "Defaults to no trim."
RECORD_TRIM_VALUES = frozenset({"trim-silence", "do-not-trim"})
RECORD_DEFAULT_EVENTS = frozenset({"completed"})
SAY_DEFAULT_LOOP = 1
SAY_MAX_BYTES = 4096  # Basic TTS limit quoted by 13521
PLAY_DEFAULT_LOOP = 1
PAUSE_DEFAULT_LENGTH = 1
REDIRECT_DEFAULT_METHOD = "POST"


class _Element:
    """One element being validated: its unread attributes and the findings made so far."""

    def __init__(self, element: etree._Element, findings: list[Finding]) -> None:
        self.element = element
        self.name = str(element.tag)
        self.line = source_line(element)
        self._findings = findings
        self.findings = findings
        self._unread = {str(key): str(value) for key, value in element.attrib.items()}

    def take(self, attribute: str) -> str | None:
        """The raw value of `attribute` (case-sensitive), or None when absent."""
        return self._unread.pop(attribute, None)

    def report(self, code: TwilioCode, detail: str, attribute: str | None = None) -> None:
        self._findings.append(
            finding(code, detail, line=self.line, verb=self.name, attribute=attribute)
        )

    def report_unknown_attributes(self) -> None:
        """Twilio's 12200 for each attribute the verb does not have; the attribute is ignored."""
        for attribute in self._unread:
            self.report(
                codes.SCHEMA_VALIDATION_WARNING,
                f"attribute '{attribute}' is not allowed on <{self.name}>; ignored",
                attribute,
            )
        self._unread.clear()

    def report_nested(self, child: etree._Element) -> None:
        """12200 for an element that may not be nested here; it is ignored."""
        self._findings.append(
            finding(
                codes.SCHEMA_VALIDATION_WARNING,
                f"<{child.tag}> cannot be nested in <{self.name}>; ignored",
                line=source_line(child),
                verb=self.name,
            )
        )

    def report_any_content(self) -> None:
        """12200 for text or nested elements in a verb that takes neither; they are ignored."""
        if _has_text(self.element.text) or any(_has_text(child.tail) for child in self.element):
            self.report(
                codes.SCHEMA_VALIDATION_WARNING,
                f"<{self.name}> takes no text; ignored",
            )
        for child in self.element:
            if isinstance(child.tag, str):
                self.report_nested(child)

    def integer(
        self,
        attribute: str,
        code: TwilioCode,
        default: int,
        minimum: int = 0,
        maximum: int = 999_999_999,
    ) -> int:
        raw = self.take(attribute)
        if raw is None:
            return default
        value = parse_integer(raw, minimum, maximum)
        if value is None:
            self.report(
                code,
                f"{_shown(raw)} is not a whole number from {minimum} to {maximum}; using {default}",
                attribute,
            )
            return default
        return value

    def boolean(self, attribute: str, code: TwilioCode, default: bool) -> bool:
        raw = self.take(attribute)
        if raw is None:
            return default
        value = parse_bool(raw)
        if value is None:
            self.report(
                code,
                f"{_shown(raw)} is not true or false; using {str(default).lower()}",
                attribute,
            )
            return default
        return value

    def method(self, attribute: str, code: TwilioCode, default: str) -> str:
        raw = self.take(attribute)
        if raw is None:
            return default
        value = parse_method(raw)
        if value is None:
            self.report(code, f"{_shown(raw)} is not GET or POST; using {default}", attribute)
            return default
        return value

    def url(self, attribute: str, code: TwilioCode) -> str | None:
        """The URL as written; None when absent, or when invalid under a WARNING code."""
        raw = self.take(attribute)
        if raw is None or is_fetchable_url(raw):
            return raw
        self.report(code, f"{_shown(raw)} is not a relative or http(s) URL", attribute)
        return None if not code.fatal else raw


def source_line(element: etree._Element) -> int | None:
    """The line an element starts on, when libxml2 knows it."""
    line: object = element.sourceline
    return line if isinstance(line, int) else None


def _shown(raw: str, limit: int = 60) -> str:
    """`raw` quoted for a message, shortened when long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


def _record(el: _Element) -> Record:
    action = el.url("action", codes.INVALID_URL_FORMAT)
    method = el.method("method", codes.RECORD_INVALID_METHOD, RECORD_DEFAULT_METHOD)
    timeout = el.integer("timeout", codes.RECORD_INVALID_TIMEOUT, RECORD_DEFAULT_TIMEOUT)

    finish_on_key = RECORD_DEFAULT_FINISH_ON_KEY
    raw_keys = el.take("finishOnKey")
    if raw_keys is not None:
        keys = parse_finish_keys(raw_keys)
        if keys is None:
            el.report(
                codes.RECORD_INVALID_FINISH_ON_KEY,
                f"{_shown(raw_keys)} has characters other than 0-9, # and *; "
                f"using {RECORD_DEFAULT_FINISH_ON_KEY}",
                "finishOnKey",
            )
        else:
            finish_on_key = keys

    transcribe = el.boolean("transcribe", codes.RECORD_INVALID_TRANSCRIBE, False)
    default_max_length = (
        RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED if transcribe else RECORD_DEFAULT_MAX_LENGTH
    )
    max_length = el.integer(
        "maxLength",
        codes.RECORD_INVALID_MAX_LENGTH,
        default_max_length,
        RECORD_MIN_MAX_LENGTH,
        RECORD_MAX_LENGTH_LIMIT,
    )
    if transcribe and max_length > RECORD_MAX_TRANSCRIBED_LENGTH:
        el.report(
            codes.RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION,
            f"maxLength {max_length} is over {RECORD_MAX_TRANSCRIBED_LENGTH} s; "
            "recordings that long are not transcribed",
            "maxLength",
        )

    play_beep = el.boolean("playBeep", codes.RECORD_INVALID_PLAY_BEEP, True)

    trim = RECORD_DEFAULT_TRIM
    raw_trim = el.take("trim")
    if raw_trim is not None:
        if raw_trim in RECORD_TRIM_VALUES:
            trim = raw_trim
        else:
            trim = RECORD_INVALID_TRIM_FALLBACK
            el.report(
                codes.RECORD_INVALID_TRIM,
                f"{_shown(raw_trim)} is not trim-silence or do-not-trim; using {trim}",
                "trim",
            )

    status_callback = el.url("recordingStatusCallback", codes.RECORDING_STATUS_CALLBACK_URL_INVALID)
    # Twilio documents no Record-specific code for this attribute: a 12200 warning it is.
    status_callback_method = el.method(
        "recordingStatusCallbackMethod",
        codes.SCHEMA_VALIDATION_WARNING,
        RECORD_DEFAULT_METHOD,
    )

    events = _status_callback_events(el)

    transcribe_callback = el.url("transcribeCallback", codes.TRANSCRIBE_CALLBACK_URL_INVALID)

    # Valid Twilio attributes this adapter does not act on (documented in twiml-support.md).
    el.take("recordingTrack")
    el.take("recordingConfigurationId")

    el.report_unknown_attributes()
    el.report_any_content()
    return Record(
        action=action,
        method=method,
        timeout=timeout,
        finish_on_key=finish_on_key,
        max_length=max_length,
        play_beep=play_beep,
        trim=trim,
        recording_status_callback=status_callback,
        recording_status_callback_method=status_callback_method,
        recording_status_callback_event=events,
        transcribe=transcribe,
        transcribe_callback=transcribe_callback,
    )


def _status_callback_events(el: _Element) -> frozenset[str]:
    """``recordingStatusCallbackEvent`` of <Record> and <Recording> (13621, fatal)."""
    raw = el.take("recordingStatusCallbackEvent")
    if raw is None:
        return RECORD_DEFAULT_EVENTS
    events = parse_events(raw)
    if events is None:
        el.report(
            codes.RECORD_INVALID_STATUS_CALLBACK_EVENT,
            f"{_shown(raw)} is not a space-separated list of in-progress, completed and absent",
            "recordingStatusCallbackEvent",
        )
        return RECORD_DEFAULT_EVENTS
    return events


def _ssml_text(element: etree._Element, el: _Element) -> str:
    """The text of `element`'s content, keeping SSML children's text and dropping others'."""
    pieces = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            if child.tag in SSML_ELEMENTS:
                pieces.append(_ssml_text(child, el))
            else:
                el.report_nested(child)
        pieces.append(child.tail or "")
    return "".join(pieces)


def _say(el: _Element) -> Say | None:
    voice = el.take("voice")
    language = el.take("language")
    loop = el.integer("loop", codes.SAY_INVALID_LOOP, SAY_DEFAULT_LOOP)
    el.report_unknown_attributes()
    text = _ssml_text(el.element, el).strip()
    if not text:
        el.report(codes.SAY_INVALID_TEXT, "there is no text to say; <Say> skipped")
        return None
    size = len(text.encode("utf-8"))
    if size > SAY_MAX_BYTES:
        el.report(
            codes.SAY_TEXT_TOO_LONG,
            f"the text is {size} bytes, over the {SAY_MAX_BYTES}-byte limit",
        )
    return Say(text=text, voice=voice, language=language, loop=loop)


def _play(el: _Element) -> Play:
    loop = el.integer("loop", codes.PLAY_INVALID_LOOP, PLAY_DEFAULT_LOOP)
    digits: str | None = None
    raw_digits = el.take("digits")
    if raw_digits is not None:
        digits = parse_dtmf(raw_digits)
        if digits is None:
            el.report(
                codes.PLAY_INVALID_DIGITS,
                f"{_shown(raw_digits)} may only contain 0-9, A-D, *, #, w and W; ignored",
                "digits",
            )
    el.report_unknown_attributes()
    url = _noun_url(el, required=digits is None)
    return Play(url=url, loop=loop, digits=digits)


def _pause(el: _Element) -> Pause:
    length = el.integer("length", codes.PAUSE_INVALID_LENGTH, PAUSE_DEFAULT_LENGTH, minimum=1)
    el.report_unknown_attributes()
    el.report_any_content()
    return Pause(length=length)


def _hangup(el: _Element) -> Hangup:
    el.report_unknown_attributes()
    el.report_any_content()
    return Hangup()


REJECT_REASONS = frozenset({"rejected", "busy"})
REJECT_DEFAULT_REASON = "rejected"


def _reject(el: _Element) -> Reject:
    # Twilio documents no code for another reason: 12200 and the default, as for other choices.
    reason = _choice(el, "reason", REJECT_REASONS, REJECT_DEFAULT_REASON)
    el.report_unknown_attributes()
    el.report_any_content()
    return Reject(reason=reason)


def _redirect(el: _Element) -> Redirect:
    method = el.method("method", codes.REDIRECT_INVALID_METHOD, REDIRECT_DEFAULT_METHOD)
    el.report_unknown_attributes()
    url = _noun_url(el, required=True)
    return Redirect(url=url or "", method=method)


def _noun_url(el: _Element, *, required: bool) -> str | None:
    """The URL written as the element's text (surrounding whitespace removed), or None."""
    for child in el.element:
        if isinstance(child.tag, str):
            el.report_nested(child)
    text = "".join([el.element.text or "", *(child.tail or "" for child in el.element)])
    url = text.strip()
    if not url:
        if required:
            el.report(codes.INVALID_URL_FORMAT, f"<{el.name}> has no URL")
        return None
    if not is_fetchable_url(url):
        el.report(codes.INVALID_URL_FORMAT, f"{_shown(url)} is not a relative or http(s) URL")
    return url


def _recording_noun(el: _Element) -> StartRecording:
    name = el.take("name")
    status_callback = el.url("recordingStatusCallback", codes.RECORDING_STATUS_CALLBACK_URL_INVALID)
    status_callback_method = el.method(
        "recordingStatusCallbackMethod", codes.SCHEMA_VALIDATION_WARNING, RECORD_DEFAULT_METHOD
    )
    events = _status_callback_events(el)
    trim = _choice(el, "trim", RECORD_TRIM_VALUES, RECORD_DEFAULT_TRIM)
    track = _choice(el, "track", RECORDING_TRACKS, RECORDING_DEFAULT_TRACK)
    channels = _choice(el, "channels", RECORDING_CHANNELS, RECORDING_DEFAULT_CHANNELS)
    el.take("recordingConfigurationId")
    el.report_unknown_attributes()
    el.report_any_content()
    return StartRecording(
        name=name,
        recording_status_callback=status_callback,
        recording_status_callback_method=status_callback_method,
        recording_status_callback_event=events,
        trim=trim,
        track=track,
        channels=channels,
    )


def _choice(el: _Element, attribute: str, allowed: frozenset[str], default: str) -> str:
    """One of `allowed` (case-sensitive, as Twilio's schema); 12200 and the default otherwise."""
    raw = el.take(attribute)
    if raw is None:
        return default
    if raw in allowed:
        return raw
    el.report(
        codes.SCHEMA_VALIDATION_WARNING,
        f"{_shown(raw)} is not one of {', '.join(sorted(allowed))}; using {default}",
        attribute,
    )
    return default


def _start_or_stop(el: _Element) -> list[Verb]:
    """<Start>/<Stop>: each <Recording> noun becomes a verb, in order; other nouns Unsupported."""
    el.report_unknown_attributes()
    if _has_text(el.element.text) or any(_has_text(child.tail) for child in el.element):
        el.report(codes.SCHEMA_VALIDATION_WARNING, f"<{el.name}> takes no text; ignored")
    verbs: list[Verb] = []
    for child in el.element:
        if not isinstance(child.tag, str):
            continue
        noun = _Element(child, el.findings)
        if noun.name == "Recording":
            if el.name == "Start":
                verbs.append(_recording_noun(noun))
            else:
                name = noun.take("name")
                noun.report_unknown_attributes()
                verbs.append(StopRecording(name=name))
        elif noun.name in START_NOUNS:
            verbs.append(Unsupported(
                name=f"{el.name}/{noun.name}",
                attributes=tuple((str(k), str(v)) for k, v in child.attrib.items()),
                line=source_line(child),
            ))
        else:
            el.report_nested(child)
    if not verbs:
        el.report(codes.SCHEMA_VALIDATION_WARNING, f"<{el.name}> has no noun; skipped")
    return verbs


def _dial(el: _Element) -> Dial | Unsupported | None:
    """<Dial> with a plain-text number, <Number> or <Sip> nouns (several ring at once)."""
    for child in el.element:
        if isinstance(child.tag, str) and child.tag in DIAL_UNSUPPORTED_NOUNS:
            return Unsupported(
                name=f"Dial/{child.tag}",
                attributes=tuple((str(k), str(v)) for k, v in el.element.attrib.items()),
                line=source_line(child),
            )
    action = el.url("action", codes.INVALID_URL_FORMAT)
    method = el.method("method", codes.DIAL_INVALID_METHOD, RECORD_DEFAULT_METHOD)
    timeout = el.integer("timeout", codes.DIAL_INVALID_TIMEOUT, DIAL_DEFAULT_TIMEOUT, 1)
    if timeout < DIAL_MIN_TIMEOUT or timeout > DIAL_MAX_TIMEOUT:
        clamped = min(max(timeout, DIAL_MIN_TIMEOUT), DIAL_MAX_TIMEOUT)
        el.report(codes.DIAL_INVALID_TIMEOUT,
                  f"{timeout} is outside {DIAL_MIN_TIMEOUT}..{DIAL_MAX_TIMEOUT}; using {clamped}",
                  "timeout")
        timeout = clamped
    caller_id = el.take("callerId")
    if caller_id is not None and not CALLER_ID.fullmatch(caller_id):
        el.report(codes.DIAL_INVALID_CALLER_ID,
                  f"{_shown(caller_id)} is not a phone number or SIP user; using the caller's",
                  "callerId")
        caller_id = None
    time_limit = el.integer("timeLimit", codes.DIAL_INVALID_TIME_LIMIT, DIAL_DEFAULT_TIME_LIMIT, 1)
    hangup_on_star = el.boolean("hangupOnStar", codes.DIAL_INVALID_HANGUP_ON_STAR, False)
    answer_on_bridge = el.boolean("answerOnBridge", codes.DIAL_INVALID_ANSWER_ON_BRIDGE, False)
    record = _choice_code(el, "record", DIAL_RECORD_VALUES, "do-not-record",
                          codes.DIAL_INVALID_RECORD)
    for ignored in ("ringTone", "recordingStatusCallback", "recordingStatusCallbackMethod",
                    "recordingStatusCallbackEvent", "recordingTrack", "trim", "sequential",
                    "referUrl", "referMethod", "callReason", "recordingConfigurationId"):
        el.take(ignored)
    el.report_unknown_attributes()

    targets: list[DialTarget] = []
    text = (el.element.text or "").strip()
    if text:
        target = _number_target(el, text, None)
        if target is not None:
            targets.append(target)
    for child in el.element:
        if not isinstance(child.tag, str):
            continue
        noun = _Element(child, el.findings)
        if noun.name in ("Number", "Sip"):
            targets.extend(_dial_noun(noun))
        else:
            noun.report(codes.DIAL_INVALID_NESTED_ELEMENT,
                        f"<{noun.name}> cannot be nested in <Dial>; ignored")
        if _has_text(child.tail):
            el.report(codes.SCHEMA_VALIDATION_WARNING, "text between <Dial> nouns is ignored")
    if not targets:
        el.report(codes.DIAL_INVALID_NESTED_ELEMENT, "<Dial> has nothing to call; skipped")
        return None
    return Dial(
        targets=tuple(targets), action=action, method=method, timeout=timeout,
        caller_id=caller_id, time_limit=time_limit, hangup_on_star=hangup_on_star,
        answer_on_bridge=answer_on_bridge, record=record,
    )


def _dial_noun(noun: _Element) -> list[DialTarget]:
    send_digits = noun.take("sendDigits")
    if send_digits is not None and parse_dtmf(send_digits) is None:
        noun.report(codes.DIAL_NUMBER_INVALID_SEND_DIGITS,
                    f"{_shown(send_digits)} is not DTMF; ignored", "sendDigits")
        send_digits = None
    for ignored in ("url", "method", "statusCallback", "statusCallbackMethod",
                    "statusCallbackEvent", "byoc", "machineDetection", "machineDetectionTimeout",
                    "amdStatusCallback", "amdStatusCallbackMethod", "username", "password"):
        noun.take(ignored)
    noun.report_unknown_attributes()
    text = (noun.element.text or "").strip()
    for child in noun.element:
        if isinstance(child.tag, str):
            noun.report_nested(child)
    if noun.name == "Number":
        target = _number_target(noun, text, send_digits)
        return [target] if target is not None else []
    if not SIP_URI_SCHEME_OPTIONAL.fullmatch(text):
        noun.report(codes.DIAL_SIP_INVALID_URI,
                    f"{_shown(text)} is not a sip:user@host URI this adapter can dial; skipped")
        return []
    uri = text if text.startswith(("sip:", "sips:")) else f"sip:{text}"
    return [DialTarget("sip", uri, send_digits)]


def _number_target(el: _Element, text: str, send_digits: str | None) -> DialTarget | None:
    number = text.translate(_PHONE_PUNCTUATION)
    if not PHONE_NUMBER.fullmatch(number):
        el.report(codes.DIAL_INVALID_PHONE_NUMBER,
                  f"{_shown(text)} is not a phone number; skipped")
        return None
    return DialTarget("number", number, send_digits)


def _choice_code(el: _Element, attribute: str, allowed: frozenset[str], default: str,
                 code: TwilioCode) -> str:
    raw = el.take(attribute)
    if raw is None:
        return default
    if raw in allowed:
        return raw
    el.report(code, f"{_shown(raw)} is not one of {', '.join(sorted(allowed))}; using {default}",
              attribute)
    return default


def _unsupported(el: _Element) -> Unsupported:
    return Unsupported(
        name=el.name,
        attributes=tuple((str(k), str(v)) for k, v in el.element.attrib.items()),
        line=source_line(el.element),
    )


_BUILDERS = {
    "Record": _record,
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Hangup": _hangup,
    "Redirect": _redirect,
    "Reject": _reject,
}


def _verbs(element: etree._Element, findings: list[Finding]) -> list[Verb]:
    """The typed verbs for one child of <Response> (none when it is skipped; several for a
    <Start> holding several nouns)."""
    el = _Element(element, findings)
    if el.name in ("Start", "Stop"):
        return _start_or_stop(el)
    if el.name == "Dial":
        dial = _dial(el)
        return [dial] if dial is not None else []
    builder = _BUILDERS.get(el.name)
    if builder is not None:
        verb = builder(el)
        return [verb] if verb is not None else []
    if el.name in UNSUPPORTED_VERBS:
        return [_unsupported(el)]
    el.report(
        codes.SCHEMA_VALIDATION_WARNING,
        f"<{el.name}> is not a TwiML verb (names are case-sensitive); skipped",
    )
    return []


def validate_tree(root: etree._Element) -> tuple[tuple[Verb, ...], list[Finding]]:
    """The verbs of a parsed document and every finding about it, fatal ones included.

    The root must be <Response> (12102, fatal). Text directly inside <Response>, attributes on
    it and unknown elements are 12200 warnings and are ignored.
    """
    findings: list[Finding] = []
    if root.tag != "Response":
        findings.append(
            finding(
                codes.ROOT_ELEMENT_NOT_RESPONSE,
                f"the root element is <{root.tag}>",
                line=source_line(root),
            )
        )
        return (), findings
    response = _Element(root, findings)
    response.report_unknown_attributes()
    if _has_text(root.text) or any(_has_text(child.tail) for child in root):
        response.report(
            codes.SCHEMA_VALIDATION_WARNING, "text directly inside <Response> is ignored"
        )
    verbs: list[Verb] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        verbs.extend(_verbs(child, findings))
    return tuple(verbs), findings
