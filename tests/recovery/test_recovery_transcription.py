"""A `<Record transcribe>` owed when the adapter died (adapter/transcription/jobs.py): startup
recovery finalises the recording from the spool, then the node's owed transcription jobs run,
from whichever step each row says is owed, and the transcribeCallback is queued once. Real
speech (espeak-ng), the real local engine; on SQLite and PostgreSQL (`db_url`)."""

# The fixtures config/store/outbox are imported from recovery_fixtures and used as parameters:
# ruff: noqa: F811
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from recovery_fixtures import (  # noqa: F401 - fixtures
    ACCOUNT,
    add_call,
    add_recording,
    config,
    outbox,
    queued,
    spool_dir,
    store,
    write_wav,
)
from speech import MAX_WER, SENTENCES, word_error_rate
from speech import speak as speak_into

from adapter.callbacks.outbox import Outbox
from adapter.config import Config
from adapter.db.store import CallRow, RecordingRow, Store
from adapter.db.transcriptions import (
    TranscriptionRow,
    add_transcription,
    get_transcription,
    update_transcription,
)
from adapter.recovery.run import recover
from adapter.sids import TRANSCRIPTION, new_sid
from adapter.transcription import TranscriptionPool
from adapter.transcription.jobs import TranscriptionJobs
from adapter.transcription.local_whisper import LocalWhisperEngine

NODE = "node-a"
CALLBACK = "https://app.example/transcribed"


@pytest.fixture
async def jobs(store: Store, outbox: Outbox, config: Config) -> AsyncIterator[TranscriptionJobs]:
    """The restarted node's jobs (the outbox is never started: the test reads the queue)."""
    running = TranscriptionJobs(store, outbox, config, TranscriptionPool(LocalWhisperEngine()),
                                node_id=NODE)
    yield running
    await running.stop()


async def owed(store: Store, recording: RecordingRow, *, node: str = NODE,
               **changes: object) -> str:
    """The row a `<Record transcribe>` writes when it starts, as the kill left it."""
    now = datetime.now(UTC)
    row = TranscriptionRow(sid=new_sid(TRANSCRIPTION), account_sid=ACCOUNT,
                           recording_sid=recording.sid, call_sid=recording.call_sid,
                           status="in-progress", node_id=node, callback_url=CALLBACK,
                           date_created=now, date_updated=now)
    await add_transcription(store, row)
    if changes:
        await update_transcription(store, row.sid, **changes)
    return row.sid


async def killed_mid_record(store: Store, config: Config) -> tuple[CallRow, RecordingRow]:
    """A call killed while its <Record> ran: the PBX's file of the caller's speech is left."""
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", callback=None)
    speak_into(SENTENCES[0], spool_dir(config, call.sid) / f"{rec.sid}.wav")
    return call, rec


async def test_the_transcription_owed_at_the_kill_is_made_after_recovery(
        store: Store, outbox: Outbox, config: Config, jobs: TranscriptionJobs) -> None:
    call, rec = await killed_mid_record(store, config)
    sid = await owed(store, rec)
    await recover(store, outbox, config, close_wait=0.2)
    assert await jobs.resume() == 1
    await jobs.wait()

    row = await get_transcription(store, ACCOUNT, sid)
    assert row is not None and (row.status, row.job) == ("completed", "done")
    assert word_error_rate(SENTENCES[0], row.transcription_text or "") <= MAX_WER
    callbacks = [(url, p) for _, url, p in await queued(store) if url == CALLBACK]
    assert len(callbacks) == 1
    params = callbacks[0][1]
    assert (params["TranscriptionSid"], params["RecordingSid"], params["CallSid"]) == (
        sid, rec.sid, call.sid)
    assert params["TranscriptionText"] == row.transcription_text
    assert params["CallStatus"] == "completed" and params["From"] == call.from_
    # Nothing is owed any more: a second restart queues nothing.
    assert await jobs.resume() == 0


async def test_a_kill_between_the_text_and_the_callback_queues_it_once(
        store: Store, outbox: Outbox, config: Config, jobs: TranscriptionJobs) -> None:
    _, rec = await killed_mid_record(store, config)
    await recover(store, outbox, config, close_wait=0.2)
    sid = await owed(store, rec, status="completed", transcription_text="Hello there.",
                     duration=3, job="callback")
    await jobs.run(sid)
    # Killed after queuing, before the row said so: the same event id, nothing new queued.
    await update_transcription(store, sid, job="callback")
    await jobs.run(sid)
    callbacks = [p for _, url, p in await queued(store) if url == CALLBACK]
    assert [p["TranscriptionText"] for p in callbacks] == ["Hello there."]


async def test_an_absent_recording_and_another_nodes_job(
        store: Store, outbox: Outbox, config: Config, jobs: TranscriptionJobs) -> None:
    call = await add_call(store)
    silent = await add_recording(store, call, config, source="RecordVerb", callback=None)
    write_wav(spool_dir(config, call.sid) / f"{silent.sid}.wav", 3.0, tone=False)
    gone = await owed(store, silent)
    _, spoken = await killed_mid_record(store, config)
    theirs = await owed(store, spoken, node="node-b")
    await recover(store, outbox, config, close_wait=0.2)
    assert await jobs.resume() == 1  # node-b's own restart finishes its job
    await jobs.wait()
    assert await get_transcription(store, ACCOUNT, gone) is None  # absent: no transcription
    other = await get_transcription(store, ACCOUNT, theirs)
    assert other is not None and other.job == "transcribe"
    assert [url for _, url, _ in await queued(store) if url == CALLBACK] == []
