"""Fault injection: real Asterisk calls, the adapter as a subprocess (``twiml-adapter serve``),
real SQLite and PostgreSQL, and the faults a deployment meets: the adapter killed with SIGKILL
mid-recording, the callback receiver refusing / answering 5xx / stalling, the AMI connection
cut, a full disk. Each test ends with the same check (fault_lab.Tally): every recording has its
callbacks, in order, with valid signatures, none delivered twice; and prints the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from asterisk_lab import CALLEES_CONTEXT, AmiEventLog, AsteriskPbx, CallerScript, originate
from fault_checks import (
    adapter_process,
    both_reported,
    recordings,
    rest_call_reported,
    statuses_of,
)
from fault_lab import (
    CallbackReceiver,
    Mode,
    Tally,
    TcpProxy,
    free_port,
    recorded_rest_call,
    wait_all_delivered,
)
from speech import MAX_WER, SENTENCES, corpus_wer, speak
from sqlalchemy import select
from twilio.twiml.voice_response import Start, VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp

from adapter.db.schema import outbox_table
from adapter.db.store import RecordingRow, Store
from adapter.recordings import layout, media, silence

pytestmark = pytest.mark.asterisk

TO_START = "+15557651000"  # <Start><Recording> and a long <Pause>
TO_RECORD = "+15557652000"  # <Record>
FROM = "+15551230009"
EVENTS = "in-progress completed absent"


def published(tmp_path: Path, sid: str) -> Path:
    """The published WAV of recording `sid` of the adapter in ``tmp_path/data``."""
    return layout.media_file(layout.default_media_dir(tmp_path / "data"), sid)


def environ(pbx: AsteriskPbx, data_dir: Path, voice_url: str, database_url: str, *,
            ami_port: int | None = None) -> dict[str, str]:
    return {
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
        "TWIML_ADAPTER_STORAGE_DATABASE_URL": database_url,
        "TWIML_ADAPTER_ASTERISK_HOST": pbx.ami_host,
        "TWIML_ADAPTER_ASTERISK_PORT": str(ami_port or pbx.ami_port),
        "TWIML_ADAPTER_ASTERISK_USERNAME": pbx.ami_username,
        "TWIML_ADAPTER_ASTERISK_SECRET": pbx.ami_secret,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": pbx.spool_dir,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL": str(pbx.spool_dir_local),
        "TWIML_ADAPTER_ASTERISK_DIAL_NUMBER": "Local/{number}@" + CALLEES_CONTEXT,
        "TWIML_ADAPTER_NUMBERS": f'[{{"number": "*", "voice_url": "{voice_url}"}}]',
        "TWIML_ADAPTER_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'adapter.db'}"


async def outbox_attempts(database_url: str, sid: str) -> list[tuple[str, int, int | None]]:
    store = await Store.open(database_url)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(
                select(outbox_table).where(outbox_table.c.key == sid)
                .order_by(outbox_table.c.id))).mappings().all()
    finally:
        await store.close()
    return [(r["state"], r["attempts"], r["last_error_code"]) for r in rows]


def runs_record_file(event: Any) -> bool:
    """Asterisk began an AGI ``RECORD FILE`` (``AGIExecStart``): the adapter is killed only once
    the PBX records, not between the in-progress callback and the command that follows it."""
    return str(event.get("Command", "")).startswith("RECORD FILE")


def record(callback: str, **extra: Any) -> VoiceResponse:
    response = VoiceResponse()
    response.record(recording_status_callback=callback,
                    recording_status_callback_event=EVENTS, play_beep=False, **extra)
    return response


# --- SIGKILL mid-recording, on SQLite and PostgreSQL ------------------------------------------


async def test_kill_9_mid_recording_loses_nothing(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog, app: TwimlApp,
    receiver: CallbackReceiver, db_url: str, tmp_path: Path,
) -> None:
    """Two calls are recording when the adapter is killed: call A (MixMonitor) hangs up while
    the adapter is down; call B (RECORD FILE) is still talking when it comes back. After the
    restart both recordings are final and reported, and B's channel is hung up."""

    def voice(request: ReceivedRequest) -> str:
        if request.params["To"] == TO_START:
            response = VoiceResponse()
            start = Start()
            start.recording(recording_status_callback=receiver.url("/rec-a"),
                            recording_status_callback_event=EVENTS, track="inbound")
            response.append(start)
            response.pause(length=60)
            return str(response)
        return str(record(receiver.url("/rec-b"), timeout=0, max_length=120,
                          action=app.url("/done")))

    app.answer("/voice", voice)
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), db_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        uid_a = await originate(ami, CallerScript.SPEAK_HANGUP, TO_START, from_number=FROM,
                                caller_name="A", variables={"LEAD_S": "3"})
        uid_b = await originate(ami, CallerScript.SPEAK_LOOP, TO_RECORD, from_number=FROM,
                                caller_name="B", variables={"DURATION_S": "60"})
        await receiver.wait_for(lambda rs: {r.path for r in rs} >= {"/rec-a", "/rec-b"},
                                within=20)
        await ami_events.wait_for("AGIExecStart", runs_record_file, within=20)
        # Killed after a clean delivery of both in-progress callbacks (killed mid-send, a
        # callback is sent again with the same idempotency token: at least once).
        await wait_all_delivered(db_url, 2)
        await adapter.kill()
        # Call A ends while no adapter runs; MixMonitor closes its file by itself.
        await ami_events.wait_for("Hangup", lambda e: e.get("Uniqueid") == uid_a, within=30)
        assert not ami_events.matching("Hangup", lambda e: e.get("Uniqueid") == uid_b)
        await adapter.start()
        hangup_b = await ami_events.wait_for("Hangup", lambda e: e.get("Uniqueid") == uid_b,
                                             within=20)
        rec_a, rec_b, tally = await both_reported(db_url, receiver)

    assert hangup_b.get("Cause") == "16"  # hung up by the recovery, normal clearing
    assert "still up after the restart" in adapter.log_text()
    rows = await recordings(db_url)
    for sid in (rec_a.sid, rec_b.sid):
        assert rows[sid].status == "completed" and rows[sid].media_path
        wav = published(tmp_path, rows[sid].sid)
        assert media.wav_is_final(wav) and not silence.is_silent(wav)
    # A: 3 s of silence, then the 6.1 s speech; trimmed as <Recording> is by default
    # (trim-silence, as the live call would have done): the speech. B: speech until the hang-up.
    assert 5 <= (rows[rec_a.sid].duration or 0) <= 8
    assert (rows[rec_b.sid].duration or 0) >= 3
    completed_b = next(r for r in receiver.requests if r.params.get("RecordingSid") == rec_b.sid
                       and r.params["RecordingStatus"] == "completed")
    assert completed_b.params["RecordingDuration"] == str(rows[rec_b.sid].duration)
    # B's action request, owed when the adapter died, is made after the restart as Twilio makes
    # it after a hang-up: once, with the recording and Digits=hangup.
    (action,) = app.received("/done")
    assert action.signature_valid
    assert action.params["RecordingSid"] == rec_b.sid
    assert action.params["Digits"] == "hangup" and action.params["CallStatus"] == "completed"
    assert action.params["RecordingDuration"] == str(rows[rec_b.sid].duration)
    tally.check(receiver, f"kill -9 mid-recording, {db_url.split(':')[0]}")


async def test_kill_9_mid_record_transcribe_is_transcribed_after_the_restart(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog, app: TwimlApp,
    receiver: CallbackReceiver, sqlite_url: str, tmp_path: Path,
) -> None:
    """The adapter is killed while a `<Record transcribe>` records espeak-ng speech; the
    caller finishes speaking and presses # while no adapter runs. After the restart the
    recording is final, its transcription is made by the restarted adapter and the
    transcribeCallback (signed) carries the speech."""
    voices = asterisk_lab.spool_dir_local / "voices"
    speak(" ".join(SENTENCES[:2]), voices / "two.wav", lead_s=0.5)
    (voices / "two.wav").chmod(0o644)
    voices.chmod(0o755)
    app.answer("/voice", record(receiver.url("/rec"), timeout=0, max_length=60,
                                finish_on_key="#", transcribe=True,
                                transcribe_callback=receiver.url("/transcribed")))
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), sqlite_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        await originate(ami, CallerScript.SPEAK_FILE, TO_RECORD, from_number=FROM,
                        caller_name="T", variables={"FILE": f"{asterisk_lab.spool_dir}/voices/two",
                                                    "LEAD_S": "2", "SILENCE_S": "20"})
        await receiver.wait_for(lambda rs: any(r.path == "/rec" for r in rs), within=20)
        await ami_events.wait_for("AGIExecStart", runs_record_file, within=20)
        await wait_all_delivered(sqlite_url, 1)
        await adapter.kill()
        # The caller speaks on and presses # (ending RECORD FILE) with no adapter running.
        await ami_events.wait_for("DTMFEnd", lambda e: e.get("Digit") == "#", within=30)
        await adapter.start()
        await receiver.wait_for(lambda rs: any(r.path == "/transcribed" for r in rs),
                                within=120)

    (callback,) = [r for r in receiver.requests if r.path == "/transcribed"]
    assert callback.signature_valid
    (row,) = (await recordings(sqlite_url)).values()
    assert row.status == "completed"
    assert [r.params["RecordingStatus"] for r in receiver.requests if r.path == "/rec"] == [
        "in-progress", "completed"]
    assert callback.params["RecordingSid"] == row.sid
    assert callback.params["TranscriptionStatus"] == "completed"
    text = callback.params["TranscriptionText"]
    wer = corpus_wer([(" ".join(SENTENCES[:2]), text)])
    print(f"\nafter kill -9: WER {wer:.0%}: {text!r}")
    assert wer <= MAX_WER


async def test_kill_9_during_an_outbound_rest_call(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog, app: TwimlApp,
    receiver: CallbackReceiver, sqlite_url: str, tmp_path: Path,
) -> None:
    """A REST-created call (Record=true, status callbacks) is answered and recording when the
    adapter dies. After the restart its channel (Uniqueid = CallSid) is hung up, its recording
    reported, and its ``completed`` status callback sent, numbered after the ones before."""
    from asterisk_lab import CALLEE_LONG

    waiting = VoiceResponse()
    waiting.pause(length=60)
    app.answer("/outbound", waiting)
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), sqlite_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call_sid = await recorded_rest_call(adapter, receiver, to=CALLEE_LONG, from_=FROM,
                                            url=app.url("/outbound"), database_url=sqlite_url)
        await adapter.kill()
        assert not ami_events.matching("Hangup", lambda e: e.get("Uniqueid") == call_sid)
        await adapter.start()
        hangup = await ami_events.wait_for("Hangup", lambda e: e.get("Uniqueid") == call_sid,
                                           within=20)
        rec, tally = await rest_call_reported(sqlite_url, receiver)

    assert hangup.get("Cause") == "16"
    calls = [r for r in receiver.requests if r.path == "/call"]
    assert all(r.signature_valid for r in calls)
    assert [r.params["CallStatus"] for r in calls] == ["queued", "in-progress", "completed"]
    assert [r.params["SequenceNumber"] for r in calls] == ["0", "1", "2"]
    final = calls[-1].params
    assert final["CallSid"] == call_sid and final["Direction"] == "outbound-api"
    assert int(final["CallDuration"]) >= 1
    row = (await recordings(sqlite_url))[rec.sid]
    assert row.status == "completed" and row.source == "OutboundAPI"
    tally.check(receiver, "kill -9 during a REST call, sqlite")


# --- the callback receiver misbehaves ----------------------------------------------------------


async def test_receiver_refusing_failing_and_stalling_then_up(
    asterisk_lab: AsteriskPbx, ami: Any, app: TwimlApp, receiver: CallbackReceiver,
    postgres_url: str, tmp_path: Path,
) -> None:
    """The receiver refuses connections, then answers 503, then stalls (the URL's ``#tt=3000``
    cuts the attempt after 3 s), then works: both callbacks arrive, in order, once; the call
    itself never waits for them (its action request is made while the receiver is down)."""
    app.answer("/voice", record(receiver.url("/rec#tt=3000"), timeout=2,
                                action=app.url("/done")))
    after = VoiceResponse()
    after.pause(length=1)
    app.answer("/done", after)
    await receiver.set_mode(Mode.REFUSE)
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), postgres_url)
    async with adapter_process(env, tmp_path / "adapter.log"):
        await originate(ami, CallerScript.SPEAK_SILENCE, TO_RECORD, from_number=FROM,
                        caller_name="R", variables={"SILENCE_S": "4"})
        ((sid, _),) = (await _wait_recordings(postgres_url, 1)).items()
        await _wait_outbox(postgres_url, sid, lambda rows: rows[0][1] >= 1 and rows[0][2])
        await receiver.set_mode(Mode.FAIL)
        await receiver.wait_for(lambda rs: any(r.answered == 503 for r in rs), within=20)
        await receiver.set_mode(Mode.STALL)
        await receiver.wait_for(lambda rs: any(r.answered is None for r in rs), within=20)
        # The stalled attempt ends by the URL's tt; the call went on meanwhile.
        await _wait_outbox(postgres_url, sid, lambda rows: rows[0][0] == "pending"
                           and rows[0][2] == 11203)
        done: ReceivedRequest = await app.next_request("/done", within=30)
        assert done.params["RecordingSid"] == sid
        assert statuses_of(receiver, sid) == []
        await receiver.set_mode(Mode.UP)
        tally = Tally()
        tally.expect(sid, "in-progress", "completed")
        await receiver.wait_for(lambda _: statuses_of(receiver, sid) == tally.expected[sid],
                                within=30)
    first = await _wait_outbox(postgres_url, sid, lambda rows: True)
    assert first[0][1] >= 4  # refused, 503, stalled, delivered: four attempts at least
    assert {r.answered for r in receiver.requests} >= {503, None, 204}
    tally.check(receiver, "receiver refusing / 5xx / stalling, postgresql")


async def _wait_recordings(database_url: str, count: int) -> dict[str, RecordingRow]:
    async with asyncio.timeout(30):
        while len(rows := await recordings(database_url)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # polling another process's database: no event to await
    return rows


async def _wait_outbox(database_url: str, sid: str, ready: Any,
                       within: float = 30) -> list[tuple[str, int, int | None]]:
    async with asyncio.timeout(within):
        while True:
            rows = await outbox_attempts(database_url, sid)
            if rows and ready(rows):
                return rows
            await asyncio.sleep(0.1)  # polling another process's database


# --- the AMI connection is cut --------------------------------------------------------------


async def test_ami_connection_cut_mid_recording(
    asterisk_lab: AsteriskPbx, ami: Any, app: TwimlApp, receiver: CallbackReceiver,
    sqlite_url: str, tmp_path: Path,
) -> None:
    """A proxy between the adapter and AMI drops every connection mid-recording and refuses
    new ones for 3 s. The adapter logs in again; the recording ends, is reported, and the
    action runs."""
    proxy = TcpProxy(asterisk_lab.ami_host, asterisk_lab.ami_port)
    await proxy.start()
    app.answer("/voice", record(receiver.url("/rec"), timeout=3, action=app.url("/done")))
    app.answer("/done", VoiceResponse())
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), sqlite_url,
                  ami_port=proxy.port)
    try:
        async with adapter_process(env, tmp_path / "adapter.log") as adapter:
            await originate(ami, CallerScript.SPEAK_SILENCE, TO_RECORD, from_number=FROM,
                            caller_name="C", variables={"LEAD_S": "1", "SILENCE_S": "12"})
            await receiver.wait_for(lambda rs: len(rs) >= 1, within=20)  # recording runs
            assert proxy.connections == 1
            await proxy.cut()
            await asyncio.sleep(3)  # the outage itself
            await proxy.restore()
            done = await app.next_request("/done", within=30)
            sid = done.params["RecordingSid"]
            tally = Tally()
            tally.expect(sid, "in-progress", "completed")
            await receiver.wait_for(lambda _: statuses_of(receiver, sid) == tally.expected[sid],
                                    within=20)
        assert proxy.connections == 2  # logged in again through the proxy
        assert 5 <= int(done.params["RecordingDuration"]) <= 8
        assert "Digits" not in done.params  # ended by silence, not by a hang-up
        tally.check(receiver, "AMI connection cut mid-recording, sqlite")
        assert "Traceback" not in adapter.log_text()
    finally:
        await proxy.stop()


async def test_caller_hangs_up_while_the_ami_connection_is_down(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog, app: TwimlApp,
    receiver: CallbackReceiver, sqlite_url: str, tmp_path: Path,
) -> None:
    """The AMI connection is down when the caller hangs up mid-`<Record>`: the Hangup event and
    the RECORD FILE reply are lost. After the reconnect the adapter finds the channel gone,
    ends the session, and the recording is finished and reported all the same."""
    proxy = TcpProxy(asterisk_lab.ami_host, asterisk_lab.ami_port)
    await proxy.start()
    app.answer("/voice", record(receiver.url("/rec"), timeout=0, action=app.url("/done")))
    app.answer("/done", VoiceResponse())
    env = environ(asterisk_lab, tmp_path / "data", app.url("/voice"), sqlite_url,
                  ami_port=proxy.port)
    env["TWIML_TEST_SWEEP_SECONDS"] = "1"
    try:
        async with adapter_process(env, tmp_path / "adapter.log") as adapter:
            uid = await originate(ami, CallerScript.SPEAK_HANGUP, TO_RECORD, from_number=FROM,
                                  caller_name="H", variables={"LEAD_S": "1"})
            await receiver.wait_for(lambda rs: len(rs) >= 1, within=20)  # recording runs
            await proxy.cut()
            await ami_events.wait_for("Hangup", lambda e: e.get("Uniqueid") == uid, within=20)
            await proxy.restore()
            ((sid, _),) = (await _wait_recordings(sqlite_url, 1)).items()
            tally = Tally()
            tally.expect(sid, "in-progress", "completed")
            await receiver.wait_for(lambda _: statuses_of(receiver, sid) == tally.expected[sid],
                                    within=30)
        assert proxy.connections == 2
        assert "hung up while the connection was down" in adapter.log_text()
        row = (await recordings(sqlite_url))[sid]
        assert row.status == "completed" and abs((row.duration or 0) - 6) <= 1
        tally.check(receiver, "caller hangs up during an AMI outage, sqlite")
    finally:
        await proxy.stop()


# --- the disk is full ------------------------------------------------------------------------


@contextlib.contextmanager
def full_disk(folder: Path) -> Iterator[None]:
    """A 64 kB tmpfs at `folder`, filled up: every write there fails with ENOSPC."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        with (folder / "filler").open("wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_full_media_disk_makes_the_recording_absent_and_the_call_goes_on(
    asterisk_lab: AsteriskPbx, ami: Any, app: TwimlApp, receiver: CallbackReceiver,
    sqlite_url: str, tmp_path: Path,
) -> None:
    """The adapter's recordings folder is full: the call recording cannot be stored. It is
    reported ``absent`` with ErrorCode 12400, the error is logged, and the call carries on
    (the next verb's request is made)."""
    response = VoiceResponse()
    start = Start()
    start.recording(recording_status_callback=receiver.url("/rec"),
                    recording_status_callback_event=EVENTS, track="inbound", name="r1")
    response.append(start)
    response.pause(length=3)
    response.append(_stop_recording("r1"))
    response.redirect(app.url("/after"))
    app.answer("/voice", response)
    app.answer("/after", VoiceResponse())
    data = tmp_path / "data"
    env = environ(asterisk_lab, data, app.url("/voice"), sqlite_url)
    with full_disk(data / "recordings"):
        async with adapter_process(env, tmp_path / "adapter.log") as adapter:
            await originate(ami, CallerScript.SPEAK_SILENCE, TO_START, from_number=FROM,
                            caller_name="D", variables={"LEAD_S": "0", "SILENCE_S": "10"})
            after = await app.next_request("/after", within=30)
            ((sid, _),) = (await _wait_recordings(sqlite_url, 1)).items()
            tally = Tally()
            tally.expect(sid, "in-progress", "absent")
            await receiver.wait_for(lambda _: statuses_of(receiver, sid) == tally.expected[sid],
                                    within=30)
    absent = next(r for r in receiver.requests if r.params.get("RecordingStatus") == "absent")
    assert absent.params["ErrorCode"] == "12400"
    assert after.params["CallStatus"] == "in-progress"  # the call went on
    row = (await recordings(sqlite_url))[sid]
    assert (row.status, row.error_code, row.media_path) == ("absent", 12400, None)
    assert "No space left on device" in adapter.log_text()
    assert not any((asterisk_lab.spool_dir_local / "recordings").glob(f"*/{sid}*"))
    tally.check(receiver, "full media disk, sqlite")


async def test_full_media_disk_during_record_verb(
    asterisk_lab: AsteriskPbx, ami: Any, app: TwimlApp, receiver: CallbackReceiver,
    sqlite_url: str, tmp_path: Path,
) -> None:
    """`<Record>` with a full recordings folder: absent (12400), no action request, and the
    next verb runs."""
    response = record(receiver.url("/rec"), timeout=2, action=app.url("/done"))
    response.redirect(app.url("/after"))
    app.answer("/voice", response)
    app.answer("/after", VoiceResponse())
    data = tmp_path / "data"
    env = environ(asterisk_lab, data, app.url("/voice"), sqlite_url)
    with full_disk(data / "recordings"):
        async with adapter_process(env, tmp_path / "adapter.log"):
            await originate(ami, CallerScript.SPEAK_SILENCE, TO_RECORD, from_number=FROM,
                            caller_name="E", variables={"SILENCE_S": "6"})
            await app.next_request("/after", within=15)
            ((sid, _),) = (await _wait_recordings(sqlite_url, 1)).items()
            tally = Tally()
            tally.expect(sid, "in-progress", "absent")
            await receiver.wait_for(lambda _: statuses_of(receiver, sid) == tally.expected[sid],
                                    within=20)
    assert app.received("/done") == []
    tally.check(receiver, "full media disk during <Record>, sqlite")


def _stop_recording(name: str) -> Any:
    from twilio.twiml.voice_response import Recording, Stop

    element = Stop()
    element.append(Recording(name=name))
    return element
