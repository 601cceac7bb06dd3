"""One FreeSWITCH channel as its events show it: state, caller profile and variables in
FreeSWITCH's order (`FakeChannel`), and the outbound channel an ``originate`` creates
(`OriginatedChannel`)."""

from __future__ import annotations

import uuid as uuid_module

from esl_server.codec import CALLING, Headers, Lines, core_prolog, event_frame, header_lines


class FakeChannel:
    """One FreeSWITCH channel: its state, caller profile and variables, and its events."""

    def __init__(
        self,
        *,
        uuid: str,
        destination: str,
        caller_number: str,
        caller_name: str = "",
        channel_name: str | None = None,
        created_us: int,
        variables: Lines | None = None,
        callee: tuple[str, str] | None = ("Outbound Call", "lab"),
        context: str = "twiml",
        source: str = "mod_loopback",
    ) -> None:
        self.uuid = uuid
        self.destination = destination
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.channel_name = channel_name or f"loopback/{destination}-b"
        self.created_us = created_us
        self.callee = callee
        self.context = context
        self.source = source
        self.state, self.call_state, self.state_number = "CS_EXECUTE", "RINGING", "4"
        self.answer_state = "ringing"
        self.answered_us = 0
        self.hangup_us = 0
        self.hangup_cause: str | None = None
        self.vars: dict[str, str] = {}
        for name, value in variables if variables is not None else self.default_variables():
            self.set_var(name, value)

    def default_variables(self) -> Lines:
        """The variables of the transcript's outbound call (t4), for this channel."""
        peer = str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, self.uuid))
        return [
            ("direction", "inbound"), ("uuid", self.uuid), ("session_id", "10"),
            ("channel_name", self.channel_name), ("read_codec", "L16"), ("read_rate", "8000"),
            ("write_codec", "L16"), ("write_rate", "8000"), ("origination_uuid", peer),
            ("other_loopback_leg_uuid", peer), ("loopback_leg", "B"), ("call_uuid", self.uuid),
            ("current_application_data", "127.0.0.1:8084 async full"),
            ("current_application", "socket"), ("socket_host", "127.0.0.1"),
        ]

    def set_var(self, name: str, value: str | None) -> None:
        """As switch_channel_set_variable: a new value goes to the end; empty deletes."""
        self.vars.pop(name, None)
        if value:
            self.vars[name] = value

    def get_var(self, name: str) -> str | None:
        return self.vars.get(name)

    def _profile(self, prefix: str) -> Lines:
        lines: Lines = [(f"{prefix}-Direction", "inbound"),
                        (f"{prefix}-Logical-Direction", "inbound"),
                        (f"{prefix}-Dialplan", "xml")]
        if self.caller_name:
            lines.append((f"{prefix}-Caller-ID-Name", self.caller_name))
        lines.append((f"{prefix}-Caller-ID-Number", self.caller_number))
        if self.caller_name:
            lines.append((f"{prefix}-Orig-Caller-ID-Name", self.caller_name))
        lines.append((f"{prefix}-Orig-Caller-ID-Number", self.caller_number))
        if self.callee is not None:
            lines += [(f"{prefix}-Callee-ID-Name", self.callee[0]),
                      (f"{prefix}-Callee-ID-Number", self.callee[1])]
        lines += [
            (f"{prefix}-ANI", self.caller_number),
            (f"{prefix}-Destination-Number", self.destination),
            (f"{prefix}-Unique-ID", self.uuid),
            (f"{prefix}-Source", self.source),
            (f"{prefix}-Context", self.context),
            (f"{prefix}-Channel-Name", self.channel_name),
            (f"{prefix}-Profile-Index", "1"),
            (f"{prefix}-Profile-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Answered-Time", str(self.answered_us)),
            (f"{prefix}-Channel-Progress-Time", "0"),
            (f"{prefix}-Channel-Progress-Media-Time", "0"),
            (f"{prefix}-Channel-Hangup-Time", str(self.hangup_us)),
        ]
        lines += [(f"{prefix}-Channel-{name}-Time", "0")
                  for name in ("Transfer", "Resurrect", "Bridged")]
        lines += [(f"{prefix}-Channel-Last-Hold", "0"), (f"{prefix}-Channel-Hold-Accum", "0"),
                  (f"{prefix}-Screen-Bit", "true"), (f"{prefix}-Privacy-Hide-Name", "false"),
                  (f"{prefix}-Privacy-Hide-Number", "false")]
        return lines

    def _prolog(self, name: str, timestamp_us: int, sequence: int,
                calling: tuple[str, str, str] | None = None) -> Lines:
        calling = calling or CALLING.get(
            name, ("switch_channel.c", "switch_channel_event_set_data", "1"))
        return core_prolog(name, timestamp_us, sequence, calling)

    def _channel_data(self) -> Lines:
        lines: Lines = [
            ("Channel-State", self.state), ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", self.state_number), ("Channel-Name", self.channel_name),
            ("Unique-ID", self.uuid), ("Call-Direction", "inbound"),
            ("Presence-Call-Direction", "inbound"), ("Channel-HIT-Dialplan", "true"),
            ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            lines.append(("Hangup-Cause", self.hangup_cause))
        for direction in ("Read", "Write"):
            lines += [(f"Channel-{direction}-Codec-Name", "L16"),
                      (f"Channel-{direction}-Codec-Rate", "8000"),
                      (f"Channel-{direction}-Codec-Bit-Rate", "128000")]
        lines += self._profile("Caller")
        lines += [(f"variable_{name}", value) for name, value in self.vars.items()]
        return lines

    def event_lines(
        self, name: str, *, timestamp_us: int, sequence: int, extra: Headers = (),
        before: Headers = (), calling: tuple[str, str, str] | None = None,
    ) -> Lines:
        return [*self._prolog(name, timestamp_us, sequence, calling), *before,
                *self._channel_data(), *extra]

    def event(
        self, name: str, *, timestamp_us: int, sequence: int, extra: Headers = (),
        before: Headers = (), calling: tuple[str, str, str] | None = None,
    ) -> bytes:
        return event_frame(self.event_lines(name, timestamp_us=timestamp_us, sequence=sequence,
                                            extra=extra, before=before, calling=calling))

    def connect_reply(self, *, timestamp_us: int, sequence: int) -> bytes:
        """The outbound socket's answer to ``connect``: one header-only frame (lab notes §8.10)."""
        lines = [*self._prolog("CHANNEL_DATA", timestamp_us, sequence), *self._profile("Channel"),
                 *self._channel_data(),
                 ("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"),
                 ("Socket-Mode", "async"), ("Control", "full")]
        return header_lines(lines, encode=True) + b"\n"


class OriginatedChannel(FakeChannel):
    """A channel ``originate`` created: ``Call-Direction: outbound`` (the channel's direction,
    switch_channel_event_set_basic_data) and an outbound caller profile; once it runs the
    dialplan its logical direction is inbound (CF_DIALPLAN, switch_channel.c).

    Before the answer (`ringing`) it is still inside switch_ivr_originate: not in a dialplan
    (``Channel-HIT-Dialplan: false``, ``Caller-Logical-Direction: outbound``, no
    ``Caller-Dialplan``), parked by originate_on_routing in CS_CONSUME_MEDIA (state number 7),
    call state DOWN until its first ring, and the caller profile switch_ivr_originate gives a
    session-less originate: context ``default``, source ``src/switch_ivr_originate.c``,
    destination number the dial string after the endpoint type, callee ``Outbound Call``; the
    profile's progress times are set before the event (switch_channel.c)."""

    in_dialplan = True
    progress_us = 0
    progress_media_us = 0

    @classmethod
    def ringing(cls, *, uuid: str, endpoint: str, variables: dict[str, str],
                created_us: int) -> OriginatedChannel:
        destination = endpoint.split("/", 1)[1] if "/" in endpoint else endpoint
        channel = cls(
            uuid=uuid, destination=destination,
            caller_number=variables.get("origination_caller_id_number", "0000000000"),
            caller_name=variables.get("origination_caller_id_name", ""),
            channel_name=endpoint, created_us=created_us,
            variables=[("direction", "outbound"), ("uuid", uuid), ("session_id", "11"),
                       ("channel_name", endpoint), *variables.items()],
            callee=("Outbound Call", destination), context="default",
            source="src/switch_ivr_originate.c",
        )
        channel.in_dialplan = False
        channel.state, channel.state_number, channel.call_state = "CS_CONSUME_MEDIA", "7", "DOWN"
        return channel

    def _profile(self, prefix: str) -> Lines:
        lines = []
        for name, value in super()._profile(prefix):
            if name == f"{prefix}-Direction" or (
                    name == f"{prefix}-Logical-Direction" and not self.in_dialplan):
                value = "outbound"
            elif name == f"{prefix}-Dialplan" and not self.in_dialplan:
                continue
            elif name == f"{prefix}-Channel-Progress-Time":
                value = str(self.progress_us)
            elif name == f"{prefix}-Channel-Progress-Media-Time":
                value = str(self.progress_media_us)
            lines.append((name, value))
        return lines

    def _channel_data(self) -> Lines:
        lines = []
        for name, value in super()._channel_data():
            if name in ("Call-Direction", "Presence-Call-Direction"):
                value = "outbound"
            elif name == "Channel-HIT-Dialplan":
                value = "true" if self.in_dialplan else "false"
            lines.append((name, value))
        return lines
