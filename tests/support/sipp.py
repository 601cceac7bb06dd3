"""sipp (Debian's sip-tester) as a SIP trunk's caller, for the tests of tests/sip/: the scenarios
we give it, the RTP it plays, and how it is run.

Media: sipp's ``play_pcap_audio`` replays the RTP packets of a pcap file from its media port to
the address the SDP answer names, with the pcap's timing. :func:`write_rtp_pcap` writes such a
file from 16-bit 8 kHz samples (encoded G.711 µ-law or A-law) and RFC 4733 telephone-events, so a
test knows exactly what the PBX received: audio, then a key, then more audio.
"""

from __future__ import annotations

import asyncio
import audioop
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DTMF_EVENTS",
    "FROM",
    "PAYLOAD_TYPES",
    "Dtmf",
    "Sipp",
    "answered_uac",
    "answering_uas",
    "free_udp_port",
    "rejected_uac",
    "start_sipp",
    "write_rtp_pcap",
]

FROM = "+15551230009"  # the From user of every scenario here (Twilio's From)
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
TELEPHONE_EVENT_PT = 101
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PTIME_SAMPLES = 160  # 20 ms at 8 kHz


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Dtmf:
    """One RFC 4733 key press in a pcap: `key` held for `seconds`."""

    key: str
    seconds: float = 0.2


def _encode(samples: Sequence[int], codec: str) -> bytes:
    linear = struct.pack(f"<{len(samples)}h", *samples)
    return audioop.lin2ulaw(linear, 2) if codec == "PCMU" else audioop.lin2alaw(linear, 2)


def _udp_frame(payload: bytes) -> bytes:
    """Ethernet + IPv4 + UDP around `payload` (addresses and ports: sipp replaces them)."""
    udp = struct.pack("!HHHH", 6000, 6000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def write_rtp_pcap(path: Path, parts: Sequence[Sequence[int] | Dtmf], codec: str) -> Path:
    """A pcap of one RTP stream (20 ms packets, 8 kHz): each part is either 16-bit samples,
    sent as `codec` (``PCMU`` or ``PCMA``), or a :class:`Dtmf` key, sent as telephone-events
    (payload type 101: the first packet marked, the duration growing every 20 ms, the end
    packet three times, as RFC 4733 asks), during which no audio is sent."""
    packets: list[tuple[float, bytes]] = []
    seq, timestamp, clock = 0, 0, 0.0
    ssrc = 0x7157AB1E

    def rtp(pt: int, marker: bool, stamp: int, payload: bytes) -> None:
        nonlocal seq
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                             stamp & 0xFFFFFFFF, ssrc)
        packets.append((clock, header + payload))
        seq += 1

    first_audio = True
    for part in parts:
        if isinstance(part, Dtmf):
            event, steps = DTMF_EVENTS[part.key], max(1, round(part.seconds * 50))
            for step in range(1, steps + 1):
                rtp(TELEPHONE_EVENT_PT, step == 1, timestamp,
                    struct.pack("!BBH", event, 10, step * PTIME_SAMPLES))
                clock += 0.02
            for _ in range(3):
                rtp(TELEPHONE_EVENT_PT, False, timestamp,
                    struct.pack("!BBH", event, 0x80 | 10, steps * PTIME_SAMPLES))
            timestamp += steps * PTIME_SAMPLES
            continue
        for start in range(0, len(part) - PTIME_SAMPLES + 1, PTIME_SAMPLES):
            rtp(PAYLOAD_TYPES[codec], first_audio, timestamp,
                _encode(part[start:start + PTIME_SAMPLES], codec))
            first_audio = False
            timestamp += PTIME_SAMPLES
            clock += 0.02
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for at, payload in packets:
            frame = _udp_frame(payload)
            seconds = int(at)
            out.write(struct.pack("<IIII", seconds, round((at - seconds) * 1e6), len(frame),
                                  len(frame)))
            out.write(frame)
    return path


_INVITE = """<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{from_}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {payload_types} 101
{rtpmaps}a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""


_OK_TO_LAST = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Length: 0

]]></send>
"""


def _invite(codecs: Sequence[str]) -> str:
    return _INVITE.format(
        from_=FROM,
        payload_types=" ".join(str(PAYLOAD_TYPES[c]) for c in codecs),
        rtpmaps="".join(f"a=rtpmap:{PAYLOAD_TYPES[c]} {c}/8000\n" for c in codecs))


def rejected_uac(status: int) -> str:
    """A sipp scenario: INVITE with G.711 and RFC 2833 offered, provisional responses allowed,
    then exactly `status` (anything else, a 200 included, fails the scenario), and the ACK of a
    final error response (same Via branch, From, To and Call-ID as the INVITE)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rejected-{status}">
  {_invite(("PCMU", "PCMA"))}
  <recv response="{status}"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""


def answered_uac(pcap: Path, codec: str, *, hang_up_after_ms: int | None) -> str:
    """A sipp scenario: INVITE offering only `codec` (and telephone-event), a 200 whose SDP
    answer must choose `codec` (else the scenario fails), the ACK, then the RTP of `pcap`;
    then either the PBX's BYE, answered 200 (`hang_up_after_ms` None), or, that many ms after
    the ACK, a BYE of ours, which must get a 200 (a BYE from the PBX before it fails). Our BYE
    takes the To (with the PBX's tag) of the last message received, the 200."""
    if hang_up_after_ms is None:
        ending = f"""  <recv request="BYE" timeout="60000"/>
{_OK_TO_LAST}"""
    else:
        ending = f"""  <pause milliseconds="{hang_up_after_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{FROM}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:{FROM}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""
    pt = PAYLOAD_TYPES[codec]
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answered-{codec}">
  {_invite((codec,))}
  <recv response="200" rtd="true">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/AVP {pt}( |\\r|\\n)" search_in="body" check_it="true"
            assign_to="answer_codec"/>
    </action>
  </recv>
  <Reference variables="answer_codec"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Contact: <sip:{FROM}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
{ending}</scenario>
"""


def answering_uas(pcap: Path, codec: str) -> str:
    """A sipp scenario for the called party: an INVITE (offering `codec` among others), answered
    200 with an SDP of `codec` and telephone-event, the ACK, the RTP of `pcap`, then the
    caller's BYE, answered 200."""
    pt = PAYLOAD_TYPES[codec]
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answering-{codec}">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]T[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt} 101
a=rtpmap:{pt} {codec}/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
]]></send>
  <recv request="ACK" rtd="true" crlf="true"/>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
  <recv request="BYE" timeout="60000"/>
{_OK_TO_LAST}</scenario>
"""


@dataclass
class Sipp:
    """A running sipp: :meth:`result` waits for its end (returncode, output)."""

    process: asyncio.subprocess.Process

    async def result(self, within: float = 60.0) -> tuple[int, str]:
        output, _ = await asyncio.wait_for(self.process.communicate(), within)
        assert self.process.returncode is not None
        return self.process.returncode, output.decode(errors="replace")[-3000:]


async def start_sipp(scenario: str, work: Path, *, call: tuple[str, tuple[str, int]] | None,
                     sip_port: int | None = None, name: str = "uac") -> Sipp:
    """sipp runs `scenario` (XML text) once from 127.0.0.1: with `call` = (to, (host, port)) it
    places the call to `to` there; without, it waits for one (a UAS) on `sip_port`. SIP and
    media on free ports unless given, 45 s at most; its files (``<name>.xml``, errors) go to
    `work`."""
    path = work / f"{name}.xml"
    path.write_text(scenario, encoding="ascii")
    target: list[str] = []
    if call is not None:
        to, (host, port) = call
        target = ["-s", to, f"{host}:{port}"]
    local_port = sip_port or free_udp_port()
    process = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(path), *target, "-i", "127.0.0.1",
        "-p", str(local_port), "-mi", "127.0.0.1", "-mp", str(free_udp_port()),
        "-m", "1", "-timeout", "45s", "-nostdin", "-trace_err",
        "-error_file", str(work / f"{name}-errors.log"),
        cwd=work, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    if call is None:
        await _until_bound(local_port, process)
    return Sipp(process)


async def _until_bound(port: int, process: asyncio.subprocess.Process) -> None:
    """Wait (10 s at most) until sipp listens on UDP `port`, so a call to it cannot come first."""
    for _ in range(200):
        if process.returncode is not None:
            raise RuntimeError(f"sipp exited with {process.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: sipp has it
        await asyncio.sleep(0.05)
    raise RuntimeError(f"sipp is not listening on UDP {port} after 10 s")
