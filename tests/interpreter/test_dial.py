"""`<Dial>`'s child call on both PBXs (a real Asterisk 22, a real FreeSWITCH 1.10.12): its row is
``in-progress`` from the callee's answer on, before the `<Dial>` ends (so a crash during the
bridge leaves it ``completed`` for recovery, not ``canceled``:
tests/recovery/test_fault_injection_freeswitch.py), and ``completed`` with the bridged seconds
at the end. The rigs are the shared suites' (tests/support/pbx_rigs.py)."""

from __future__ import annotations

import asyncio

import pbx_rigs
from adapter_harness import ACCOUNT_SID
from asterisk_lab import CALLEE_TONE1000
from pbx_rigs import AsteriskRig, Caller, Rig, finished
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings.store import CallRow

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

# A callee that answers and talks 4 s, then hangs up: Asterisk's lab, FreeSWITCH's lab.xml.
ANSWERS_THEN_HANGS_UP = {"asterisk": CALLEE_TONE1000, "freeswitch": "2000"}


async def child_of(rig: Rig, parent: str, status: str, within: float = 15.0) -> CallRow:
    """The parent's child call once its row says `status` (the adapter writes it as the PBX
    reports the answer; the test polls the database, which has no event of its own)."""
    store = rig.adapter.ctx.store  # type: ignore[union-attr]
    async with asyncio.timeout(within):
        while True:
            rows = [r for r in await store.list_calls(ACCOUNT_SID, limit=20)
                    if r.parent_call_sid == parent]
            if rows and rows[0].status == status:
                return rows[0]
            await asyncio.sleep(0.05)


async def test_the_child_call_is_in_progress_from_the_answer(rig: Rig, app: TwimlApp) -> None:
    kind = "asterisk" if isinstance(rig, AsteriskRig) else "freeswitch"
    response = VoiceResponse()
    response.dial(ANSWERS_THEN_HANGS_UP[kind], action="/dialed", timeout=10)
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    await rig.call(Caller(speaks=False))
    parent = (await app.next_request("/voice")).params["CallSid"]
    child = await child_of(rig, parent, "in-progress")
    assert app.received("/dialed") == []  # the <Dial> is still going on
    dialed = await app.next_request("/dialed", within=20)
    assert dialed.params["DialCallSid"] == child.sid
    assert dialed.params["DialCallStatus"] == "completed"
    await finished(rig)
    final = await child_of(rig, parent, "completed")
    assert final.duration is not None and 3 <= final.duration <= 5
