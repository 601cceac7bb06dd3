"""`ami_frames.parse_frame` builds in one pass exactly the Message panoramisk's own
``Message.from_line`` builds (bench/event_path.py made it the event path's hot spot), and the
Manager's dispatch without per-event regular expressions calls what panoramisk's would."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from panoramisk import Manager
from panoramisk.message import Message

from adapter.pbx.asterisk.ami import _Manager
from adapter.pbx.asterisk.ami_frames import MalformedFrame, parse_frame

NAMES = st.sampled_from(["Event", "Response", "ActionID", "Result", "result", "Channel",
                         "CommandId", "Env", "Message", "Uniqueid", "X", "event"])
VALUES = st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20)
LINES = st.one_of(st.tuples(NAMES, VALUES).map(lambda kv: f"{kv[0]}: {kv[1]}"),
                  st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=10))


def _view(message: Any) -> Any:
    return None if message is None else (sorted(message._store.items()), message.content)


@given(st.lists(LINES, min_size=1, max_size=8))
def test_the_same_message_as_panoramisk(lines: list[str]) -> None:
    text = "\r\n".join(lines)
    reference = Message.from_line(text)
    try:
        ours = parse_frame(text)
    except MalformedFrame:
        repeated = [n for n in ("event", "response", "actionid", "commandid")
                    if reference is not None and isinstance(reference.get(n), list)]
        assert repeated
        return
    assert _view(ours) == _view(reference)


def test_shapes_from_the_lab() -> None:
    frames = [
        "Event: AsyncAGIExec\r\nChannel: PJSIP/a-1\r\nResult: 200%20result%3D0%0A\r\n"
        "CommandId: rec-1",
        "Response: Success\r\nActionID: lab-3\r\nMessage: Added AGI command to queue",
        "Response: Follows\r\nActionID: 7\r\nOutput line\r\n--END COMMAND--",
        "Event: Newchannel\r\nCallerIDName: Zoë: the caller\r\nUniqueid: 1.0",
        "Channel: no event or response",
    ]
    for text in frames:
        assert _view(parse_frame(text)) == _view(Message.from_line(text))
    message = parse_frame(frames[0])
    assert message["result"] == "200 result=0"
    assert message.id == "rec-1"
    assert message.event == "AsyncAGIExec"


async def test_dispatch_calls_what_panoramisk_calls() -> None:
    def seen_by(manager_class: type) -> list[tuple[str, str]]:
        manager = manager_class(host="127.0.0.1", port=1, username="u", secret="s",
                                loop=asyncio.get_running_loop())
        seen: list[tuple[str, str]] = []
        for pattern in ("*", "Hangup", "AsyncAGI*", "Dial[BE]*", "Newstate"):
            manager.register_event(pattern, lambda _m, e, p=pattern: seen.append((p, e.event)))
        for name in ("Hangup", "AsyncAGIExec", "DialEnd", "HangupRequest", "Newstate", "X"):
            matched = manager.dispatch(parse_frame(f"Event: {name}\r\nChannel: c"))
            seen.append(("matched", ",".join(matched)))
        return seen

    assert seen_by(_Manager) == seen_by(Manager)
