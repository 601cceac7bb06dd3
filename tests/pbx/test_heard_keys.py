"""`adapter.pbx.heard_keys.HeardKeys`: which key a `<Gather>` key command answers, from the
PBX's DTMF events (the real PBXs: tests/interpreter/test_gather.py's keys during a fetch)."""

from __future__ import annotations

from adapter.pbx.base import RecordEnd, RecordResult
from adapter.pbx.heard_keys import HeardKeys


async def test_a_key_from_a_gap_answers_at_once_without_the_command() -> None:
    keys = HeardKeys()
    sent: list[str] = []

    async def command() -> str | None:
        sent.append("play")
        return None

    keys.heard("1")  # pressed while the prompt was being fetched
    assert await keys.key_from(command) == "1"
    assert sent == []
    assert await keys.key_from(command) is None  # nothing left: the command ran
    assert sent == ["play"]


async def test_the_key_that_ended_a_command_is_answered_once() -> None:
    keys = HeardKeys()

    async def ended_by_5() -> str | None:
        keys.heard("5")  # the event comes before the completion
        return "5"

    assert await keys.key_from(ended_by_5) == "5"
    assert keys.pending() is None


async def test_a_key_just_before_the_command_comes_before_the_one_that_ended_it() -> None:
    keys = HeardKeys()

    async def race() -> str | None:
        keys.heard("1")  # pressed as the command was sent: the PBX dropped it
        keys.heard("2")  # this one ended it
        return "2"

    assert await keys.key_from(race) == "1"
    assert keys.pending() == "2"
    assert keys.pending() is None


async def test_a_completion_before_its_event_does_not_count_the_key_twice() -> None:
    keys = HeardKeys()

    async def early() -> str | None:
        return "#"

    assert await keys.key_from(early) == "#"
    keys.heard("#")  # its event, late
    assert keys.pending() is None
    keys.heard("3")  # a new key
    assert keys.pending() == "3"


def test_keys_before_the_gather_do_not_count() -> None:
    keys = HeardKeys()
    keys.heard("9")  # during a <Say> before the <Gather>
    keys.forget()
    assert keys.pending() is None


def test_the_key_that_ended_an_utterance_is_not_answered_again() -> None:
    keys = HeardKeys()
    keys.heard("4")  # the event of the key that ended the recording
    result = keys.after_record(RecordResult(RecordEnd.FINISH_KEY, digit="4"))
    assert result.digit == "4"
    assert keys.pending() is None  # the next wait does not get it a second time
    silence = RecordResult(RecordEnd.SILENCE)
    keys.heard("2")
    assert keys.after_record(silence) is silence
    assert keys.pending() == "2"  # a key no recording answered stays for the next command
