"""A real SIP call into the real FreeSWITCH: sipp (Debian's sip-tester) as the trunk's caller
sends an INVITE to the SIP profile ``trunk`` (docker/freeswitch/conf/autoload_configs/
sofia.conf.xml, on 127.0.0.1 at the session's port), FreeSWITCH routes it into ``twiml``
(dialplan/freeswitch/twiml.xml) and hands it to the adapter, which answers with the app's
TwiML. sipp's built-in ``uac`` scenario hangs up with a BYE after its call length; for a
`<Reject>`, a scenario of tests/support/sipp.py (`rejected_uac`) expects the final status
instead of a 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from freeswitch_lab import FreeSwitchStack, freeswitch_under_test
from sipp import FROM, free_udp_port, rejected_uac, start_sipp
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

TO = "+15557650000"


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
            "-p", str(free_udp_port()), "-m", "1", "-d", "3000", "-timeout", "30s",
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


@pytest.mark.parametrize(("reason", "status"), [("busy", 486), ("rejected", 603)])
async def test_reject_answers_the_invite_with_its_sip_status(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path, reason: str, status: int
) -> None:
    """<Reject> as the first verb: the INVITE gets 486 Busy Here (busy) or 603 Decline
    (rejected), never a 200."""
    response = VoiceResponse()
    response.reject(reason=reason)
    app.answer("/voice", response)
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await start_sipp(rejected_uac(status), tmp_path,
                                call=(TO, freeswitch_real.sip_address))
        voice = await app.next_request("/voice", within=15)
        assert voice.params["From"] == FROM and voice.params["CallStatus"] == "ringing"
        returncode, output = await sipp.result(within=40)
        assert returncode == 0, output
        assert await asyncio.wait_for(adapter.finished.get(), 15) == voice.params["CallSid"]
        row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
        assert row is not None and row.status == ("busy" if reason == "busy" else "no-answer")
