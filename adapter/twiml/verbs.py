"""Typed TwiML verbs, as validation leaves them: every attribute resolved to a usable value.

URLs are kept exactly as written (they may be relative); the interpreter resolves them against
the URL of the document they came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias, TypeVar

from adapter.twiml.findings import Finding

__all__ = [
    "Dial", "DialTarget", "Document", "Gather", "Hangup", "Pause", "Play", "Record", "Redirect",
    "Reject", "Say", "StartRecording", "StopRecording", "Unsupported", "Verb", "positional_builder",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Record:
    """``<Record>``. `action` None means "request the current document URL again"."""

    action: str | None
    method: str
    timeout: int
    finish_on_key: str
    max_length: int
    play_beep: bool
    trim: str
    recording_status_callback: str | None
    recording_status_callback_method: str
    recording_status_callback_event: frozenset[str]
    transcribe: bool
    transcribe_callback: str | None


@dataclass(frozen=True, slots=True)
class Say:
    """``<Say>``: plain text (SSML markup flattened to its text). `loop` 0 means until hangup."""

    text: str
    voice: str | None
    language: str | None
    loop: int


@dataclass(frozen=True, slots=True)
class Play:
    """``<Play>``: an audio URL and/or DTMF `digits`. `loop` 0 means until hangup."""

    url: str | None
    loop: int
    digits: str | None


@dataclass(frozen=True, slots=True)
class Pause:
    """``<Pause>`` for `length` seconds."""

    length: int


@dataclass(frozen=True, slots=True)
class Hangup:
    """``<Hangup>``."""


@dataclass(frozen=True, slots=True)
class Reject:
    """``<Reject>``: end the call without answering it; `reason` ``rejected`` or ``busy``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """``<Redirect>`` to `url` with `method` (GET or POST)."""

    url: str
    method: str


@dataclass(frozen=True, slots=True)
class StartRecording:
    """`<Start><Recording>`: record the call in the background; the next verb runs at once.

    `track`: inbound (from the caller), outbound (to the caller) or both; `channels`: mono or
    dual (channel 1 the caller, channel 2 the other side).
    """

    name: str | None
    recording_status_callback: str | None
    recording_status_callback_method: str
    recording_status_callback_event: frozenset[str]
    trim: str
    track: str
    channels: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    """`<Stop><Recording name="...">`: stop the named background recording."""

    name: str | None


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One party `<Dial>` calls: a `<Number>` (or plain text) or a `<Sip>` URI (``sip:`` kept).

    Several targets ring at once; the first to answer is connected.
    """

    kind: str  # "number" | "sip"
    address: str
    send_digits: str | None = None


@dataclass(frozen=True, slots=True)
class Dial:
    """`<Dial>`: call the targets and bridge the first that answers to the caller."""

    targets: tuple[DialTarget, ...]
    action: str | None
    method: str
    timeout: int
    caller_id: str | None
    time_limit: int
    hangup_on_star: bool
    answer_on_bridge: bool
    record: str  # do-not-record, record-from-answer, record-from-ringing, or either -dual
    # How the dial is recorded (channels, track, trim, status callback); None: not recorded.
    recording: StartRecording | None = None

    @property
    def records_from_ringing(self) -> bool:
        """The recording starts as the targets ring, not when one answers."""
        return self.record.startswith("record-from-ringing")


@dataclass(frozen=True, slots=True)
class Gather:
    """``<Gather>``: play `prompts` in order (the first key stops them), then collect keys until
    `num_digits` (None: no limit), `finish_on_key` (not part of the digits; ``""``: none) or
    `timeout` seconds without a key. `action` None means "request the current document URL";
    with no input the next verb runs, unless `action_on_empty_result`.

    `input` ``speech`` or ``dtmf speech``: the caller's utterance is transcribed; it ends after
    `speech_timeout` seconds of silence (``"auto"``, or None: `timeout` is used), at most
    `max_speech_time` seconds. `language` is the BCP-47 tag as written; `profanity_filter`
    masks profane words; `hints` is kept as written (the engine takes no hints)."""

    prompts: tuple[Say | Play | Pause, ...]
    action: str | None
    method: str
    timeout: int
    finish_on_key: str
    num_digits: int | None
    action_on_empty_result: bool
    input: str = "dtmf"
    speech_timeout: str | None = None
    max_speech_time: int = 60
    language: str = "en-US"
    profanity_filter: bool = True
    hints: str = ""


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A Twilio verb this adapter parses but does not implement; attributes in document order;
    `line`: where it stands in the document."""

    name: str
    attributes: tuple[tuple[str, str], ...]
    line: int | None = field(default=None, compare=False)

    @property
    def why(self) -> str:
        """What a call that reaches it gets (error 12200, the error prompt, the end)."""
        return f"<{self.name}> is not supported by twiml-pbx-adapter yet"


Verb: TypeAlias = (
    Record
    | Say
    | Play
    | Pause
    | Hangup
    | Reject
    | Redirect
    | StartRecording
    | StopRecording
    | Dial
    | Gather
    | Unsupported
)


@dataclass(frozen=True, slots=True)
class Document:
    """The verbs of a document that may run, and the non-fatal findings met on the way."""

    verbs: tuple[Verb, ...]
    findings: tuple[Finding, ...]


def positional_builder(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the frozen slots dataclass `cls` taking every field positionally, in
    declaration order, with no defaults: the instance `cls(*values)` makes, built by setting
    each slot through its descriptor (the frozen ``__init__`` looks ``object.__setattr__`` up
    and resolves the slot by name for each field; validation builds a verb per element)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    scope.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    lines += [f"    _set_{name}(obj, {name})" for name in names]
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # noqa: S102 - only the dataclass's own field names
    build: Callable[..., _T] = scope["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build
