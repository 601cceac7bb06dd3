"""Calls for the shared `<Dial>` suites (tests/interpreter/test_dial*.py): which PBX a rig
runs, and one call from a caller that sends 440 Hz into a TwiML response."""

from __future__ import annotations

from adapter_harness import call_reported
from asterisk_lab import CallerScript, originate
from pbx_rigs import TO, AsteriskRig, FreeSwitchRig, Rig
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

__all__ = ["kind_of", "run_call"]


def kind_of(rig: Rig) -> str:
    """The PBX `rig` runs: "asterisk" or "freeswitch" (the key of the suites' tables)."""
    return "asterisk" if isinstance(rig, AsteriskRig) else "freeswitch"


async def run_call(rig: Rig, app: TwimlApp, response: VoiceResponse) -> str:
    """Places a call from a caller that sends 440 Hz (Asterisk's TONE440 test caller, lab.xml's
    ``speak_99999``) to `response`; waits until it ended and every callback went out."""
    app.answer("/voice", response)
    if isinstance(rig, AsteriskRig):
        await originate(rig.ami, CallerScript.TONE440, TO, from_number="+15551230004",
                        caller_name="Dial Caller", variables={"DURATION_S": "40"})
        return await call_reported(rig.adapter, within=90)
    assert isinstance(rig, FreeSwitchRig)
    address = rig.adapter.driver.outbound_address  # type: ignore[union-attr]
    assert address is not None
    rig.fs.place_call(address, to=TO, from_="+15551230003", caller_name="Tone.Caller",
                      extension="speak_99999")
    return await call_reported(rig.adapter)
