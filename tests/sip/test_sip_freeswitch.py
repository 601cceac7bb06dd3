"""A real SIP call into the real FreeSWITCH: sipp (Debian's sip-tester) as the trunk's caller
sends an INVITE to the SIP profile ``trunk`` (docker/freeswitch/conf/autoload_configs/
sofia.conf.xml, on 127.0.0.1 at the session's port), FreeSWITCH routes it into ``twiml``
(dialplan/freeswitch/twiml.xml) and hands it to the adapter, which answers with the app's
TwiML. sipp's built-in ``uac`` scenario hangs up with a BYE after its call length; for a
`<Reject>`, a scenario of ours (`rejected_uac`) expects the final status instead of a 200."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from freeswitch_lab import FreeSwitchStack, freeswitch_under_test
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

TO = "+15557650000"
FROM = "+15551230009"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_sip_call_reaches_the_adapter(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path
) -> None:
    response = VoiceResponse()
    response.say("Hello.")
    response.pause(length=20)
    app.answer("/voice", response)
    host, port = freeswitch_real.sip_address
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sn", "uac", "-s", TO, f"{host}:{port}", "-i", "127.0.0.1",
            "-p", str(_free_udp_port()), "-m", "1", "-d", "3000", "-timeout", "30s",
            "-nostdin", "-trace_err", "-error_file", str(tmp_path / "sipp-errors.log"),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        voice = await app.next_request("/voice", within=15)
        assert voice.signature_valid
        assert voice.params["To"] == TO and voice.params["Called"] == TO
        assert voice.params["From"] == "sipp"  # the uac scenario's From user
        assert voice.params["CallStatus"] == "ringing"
        output, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, output.decode(errors="replace")[-2000:]
        # sipp's BYE ended the call long before the 20 s pause.
        assert await asyncio.wait_for(adapter.finished.get(), 15) == voice.params["CallSid"]
        row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
        assert row is not None and row.status == "completed"


def rejected_uac(status: int) -> str:
    """A sipp scenario: INVITE with G.711 and RFC 2833 offered, provisional responses allowed,
    then exactly `status` (anything else, a 200 included, fails the scenario), and the ACK of a
    final error response (same Via branch, From, To and Call-ID as the INVITE)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rejected-{status}">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{FROM}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{FROM}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
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


@pytest.mark.parametrize(("reason", "status"), [("busy", 486), ("rejected", 603)])
async def test_reject_answers_the_invite_with_its_sip_status(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path, reason: str, status: int
) -> None:
    """<Reject> as the first verb: the INVITE gets 486 Busy Here (busy) or 603 Decline
    (rejected), never a 200."""
    response = VoiceResponse()
    response.reject(reason=reason)
    app.answer("/voice", response)
    scenario = tmp_path / "rejected.xml"
    scenario.write_text(rejected_uac(status), encoding="ascii")
    host, port = freeswitch_real.sip_address
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), "-s", TO, f"{host}:{port}", "-i", "127.0.0.1",
            "-p", str(_free_udp_port()), "-m", "1", "-timeout", "30s", "-nostdin",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        voice = await app.next_request("/voice", within=15)
        assert voice.params["From"] == FROM and voice.params["CallStatus"] == "ringing"
        output, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, output.decode(errors="replace")[-2000:]
        assert await asyncio.wait_for(adapter.finished.get(), 15) == voice.params["CallSid"]
        row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
        assert row is not None and row.status == ("busy" if reason == "busy" else "no-answer")
