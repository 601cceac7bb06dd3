"""One inbound event-socket connection as mod_event_socket.c's listener keeps it: its
subscriptions (``event``, ``nixevent``), its ``filter``s and which events it wants."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from esl_server.codec import Headers


@dataclass
class InboundSession:
    """One inbound connection (mod_event_socket.c's listener): its subscriptions (``event``,
    ``nixevent``, ``noevents``), its ``filter``s, and the events it was sent (for assertions:
    (Event-Name, Unique-ID or Job-UUID))."""

    writer: asyncio.StreamWriter
    authed: bool = False
    subscriptions: set[str] = field(default_factory=set)
    nixed: set[str] = field(default_factory=set)  # taken out of ALL by nixevent
    listening: bool = False  # LFLAG_EVENTS
    filters: list[tuple[str, str]] = field(default_factory=list)  # in the order added
    received: list[tuple[str, str]] = field(default_factory=list)

    def subscribe(self, rest: str) -> str:
        """``event [plain|xml|json] <names>``: each name is added (ALL: every event)."""
        names = rest.split()
        if names and names[0].lower() in ("plain", "xml", "json"):
            names = names[1:]
        if not names:
            return "-ERR no keywords supplied"
        for name in names:
            if name == "ALL":
                self.nixed.clear()
            self.nixed.discard(name)
            self.subscriptions.add(name)
        self.listening = True
        return "+OK event listener enabled plain"

    def unsubscribe(self, rest: str) -> str:
        """``nixevent <names>``: ALL clears everything; a name taken out of ALL is nixed."""
        names = rest.split()
        if not names:
            return "-ERR no keywords supplied"
        for name in names:
            if name == "ALL":
                self.subscriptions.clear()
                self.nixed.clear()
            elif "ALL" in self.subscriptions:
                self.nixed.add(name)
            else:
                self.subscriptions.discard(name)
        self.listening = True
        return "+OK events nixed"

    def filter(self, rest: str) -> str:
        """``filter [add] <header> <value>``, ``filter delete <header> [<value>]``,
        ``filter delete all``, with parse_command's replies. Delete matches the header name
        case-insensitively and the value exactly (switch_event_del_header_val)."""
        name, sep, value = rest.lstrip(" ").partition(" ")
        has_value = bool(sep)  # a space after the name, even with nothing after it
        if name.lower() == "delete" and has_value:
            name, sep, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [(h, v) for h, v in self.filters
                                if not (h.lower() == name.lower() and (not value or v == value))]
            return f"+OK filter deleted. [{name}][{value if sep else ''}]"
        if has_value:
            if name.lower() == "add":
                name, sep, value = value.partition(" ")
                if not sep:
                    return f"+OK filter added. [{name}]=[(null)]"  # nothing is added
            if value:
                self.filters.append((name, value))
            else:  # switch_event_add_header_string with "": deletes that name's headers
                self.filters = [(h, v) for h, v in self.filters if h.lower() != name.lower()]
            return f"+OK filter added. [{name}]=[{value}]"
        return "-ERR invalid syntax"

    def wants(self, lines: Headers) -> bool:
        """mod_event_socket.c event_handler: subscribed (or ALL), then the filters: with any
        filter set, the event must match a positive one (its header equals the value, case
        aside; ``/regex/`` values are regular expressions) and no negative (``-`` prefix) one;
        filters on headers the event lacks are skipped."""
        def header(name: str) -> str | None:
            return next((v for h, v in lines if h.lower() == name.lower()), None)

        event_name = header("Event-Name") or ""
        if not (self.authed and self.listening):
            return False
        subscribed = event_name in self.subscriptions or (
            "ALL" in self.subscriptions and event_name not in self.nixed)
        if not subscribed:
            return False
        if not self.filters:
            return True
        send = False
        for name, value in self.filters:
            found = header(name)
            if found is None:
                continue
            positive, rest = True, value
            while rest and rest[0] in "+- ":
                if rest[0] != " ":
                    positive = rest[0] == "+"
                rest = rest[1:]
            if send and positive:
                continue
            if value.startswith("/"):
                pattern, _, options = rest[1:].rpartition("/")
                flags = re.IGNORECASE if "i" in options else 0
                matched = bool(pattern) and re.search(pattern, found, flags) is not None
            else:
                matched = found.lower() == rest.lower()
            if matched:
                if not positive:
                    return False
                send = True
        return send
