"""The demo: one voicemail left through `<Record>` on a real, locally provisioned Asterisk.

    make demo            (or: .venv/bin/python docker/demo.py)

It starts Asterisk 22 (the chroot lab of docker/provision-asterisk.sh, on loopback), a small
TwiML voicemail app, and the adapter; places a call whose caller speaks a message; then prints
every webhook the app received and where the recording is.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The test support code and the Asterisk lab, as pytest sees them (setup.cfg: pythonpath).
sys.path[:0] = [str(REPO / "tests" / "support"), str(REPO / "tests" / "labs")]

from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, adapter_config, running_adapter  # noqa: E402
from asterisk_lab import (  # noqa: E402
    AsteriskLab,
    CallerScript,
    connect_ami,
    default_root,
    is_provisioned,
    originate,
    provision_root,
)
from twilio.twiml.voice_response import VoiceResponse  # noqa: E402
from twiml_app import TwimlApp  # noqa: E402

from adapter.config import Config  # noqa: E402
from adapter.db.store import RecordingRow  # noqa: E402
from adapter.recordings import layout  # noqa: E402


def voicemail_app(app: TwimlApp) -> None:
    greeting = VoiceResponse()
    greeting.say("Please leave a message after the beep. Press the pound key when done.")
    greeting.record(action="/voicemail/done", finish_on_key="#", timeout=3, max_length=60,
                    recording_status_callback="/voicemail/status",
                    recording_status_callback_event="in-progress completed absent")
    greeting.say("I did not hear a message. Goodbye.")
    app.answer("/voicemail", greeting)
    thanks = VoiceResponse()
    thanks.say("Thank you. Your message was recorded. Goodbye.")
    thanks.hangup()
    app.answer("/voicemail/done", thanks)


def recording_lines(config: Config, row: RecordingRow) -> list[str]:
    """What the demo says of a recording: where its file stays, and that its URL is served only
    while the demo's adapter runs."""
    where = layout.media_file(config.media_dir, row.sid) if row.media_path else None
    return [
        f"recording {row.sid}: {row.status}, {row.duration} s",
        f"  file: {where}  (kept after the demo)",
        f"  url:  {config.recording_url(row.sid)}  (Basic auth {ACCOUNT_SID}:<token>; served only"
        " while the demo runs: the adapter stops with it)",
    ]


async def main() -> int:
    root = default_root()
    if not is_provisioned(root):
        print(f"provisioning Asterisk from Debian sid into {root} ...", flush=True)
        provision_root(root)
    work = Path(tempfile.mkdtemp(prefix="twiml-demo-"))
    with AsteriskLab(root, work / "asterisk") as lab:
        print(f"Asterisk running in {root}, AMI on {lab.ami_host}:{lab.ami_port}", flush=True)
        app = TwimlApp(AUTH_TOKEN)
        await app.start()
        voicemail_app(app)
        config = adapter_config(lab, work / "data", app.url("/voicemail"))
        async with running_adapter(config) as adapter:
            print(f"adapter running: {config.http.public_base_url}", flush=True)
            caller = await connect_ami(lab)
            try:
                print("calling +15557650000 from +15551230001: the caller waits for the beep, speaks 6 s, "
                      "then stays silent")
                await originate(caller, CallerScript.SPEAK_SILENCE, "+15557650000",
                                from_number="+15551230001", caller_name="Demo Caller",
                                variables={"LEAD_S": "6", "SILENCE_S": "8"})
                call_sid = await asyncio.wait_for(adapter.finished.get(), 90)
                await adapter.ctx.outbox.wait_idle(30)  # type: ignore[union-attr]
            finally:
                caller.close()
            print(f"\ncall {call_sid} completed. Webhooks received by the TwiML app:")
            for request in app.requests:
                check = "signature OK" if request.signature_valid else "BAD SIGNATURE"
                print(f"\n  {request.method} {request.path}  ({check})")
                for key in sorted(request.params):
                    print(f"    {key} = {request.params[key]}")
            recordings = await adapter.ctx.store.list_recordings(  # type: ignore[union-attr]
                ACCOUNT_SID, call_sid=call_sid
            )
            for row in recordings:
                print("\n" + "\n".join(recording_lines(config, row)))
        await app.stop()
    ok = bool(recordings) and all(r.signature_valid for r in app.requests)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
