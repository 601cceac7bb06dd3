"""Every table of the adapter's database, in one SQLAlchemy `metadata`.

``calls`` and ``recordings`` (the Twilio resources, `adapter.db.store`), ``outbox`` (durable
status callbacks, `adapter.callbacks.outbox`), ``owed_requests`` (what a killed call still owes
its app, `adapter.callbacks.owed_requests`), ``transcriptions`` (Twilio's Transcription resource,
each row also the durable job that makes it, `adapter.db.transcriptions`) and ``call_owners``
(which node runs a call, for `adapter.recovery`). `adapter.db.migrations` creates them, and adds
the columns newer releases added to an older database.

Datetimes go in as timezone-aware values, are stored as UTC and come back aware (UTC):
`UTCDateTime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    literal_column,
    or_,
)

__all__ = [
    "OUTBOX_OPEN_STATES",
    "UTCDateTime",
    "call_owners_table",
    "calls_table",
    "metadata",
    "outbox_is_open",
    "outbox_table",
    "owed_requests_table",
    "recordings_table",
    "transcriptions_table",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always returned timezone-aware (UTC).

    Naive datetimes are refused: their meaning depends on the host's time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store the UTC wall-clock time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()


def _resource_table(name: str, *columns: Column[Any] | Index) -> Table:
    """The table of a Twilio resource: its SID, its account's SID, then `columns`."""
    return Table(name, metadata,
                 Column("sid", String(34), primary_key=True),
                 Column("account_sid", String(34), nullable=False),
                 *columns)


calls_table = _resource_table(
    "calls",
    Column("from_", String(255), nullable=False),
    Column("to", String(255), nullable=False),
    Column("direction", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("caller_name", String(255)),
    Column("pbx", String(64), nullable=False),
    Column("pbx_channel", String(255), nullable=False),
    Column("date_created", UTCDateTime(), nullable=False),
    Column("date_updated", UTCDateTime(), nullable=False),
    Column("start_time", UTCDateTime()),
    Column("end_time", UTCDateTime()),
    Column("duration", Integer),
    Column("parent_call_sid", String(34)),
    Index("ix_calls_account_created", "account_sid", "date_created"),
)

recordings_table = _resource_table(
    "recordings",
    Column("call_sid", String(34), nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(64), nullable=False),
    Column("channels", Integer, nullable=False),
    Column("track", String(16), nullable=False),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("duration", Integer),
    Column("media_path", Text),
    Column("pbx_file", Text),
    Column("error_code", Integer),
    Column("date_created", UTCDateTime(), nullable=False),
    Column("date_updated", UTCDateTime(), nullable=False),
    Column("name", String(255)),
    Column("status_callback", Text),
    Column("status_callback_method", String(8), nullable=False),
    Column("status_callback_events", String(255), nullable=False),
    # trim-silence | do-not-trim, as asked (for recovery); NULL in rows of older releases.
    Column("trim", String(16)),
    Index("ix_recordings_account_created", "account_sid", "date_created"),
    Index("ix_recordings_call", "call_sid"),
)

transcriptions_table = _resource_table(
    "transcriptions",
    Column("recording_sid", String(34), nullable=False),
    Column("call_sid", String(34), nullable=False),
    Column("status", String(16), nullable=False),  # in-progress | completed | failed
    Column("transcription_text", Text),
    Column("duration", Integer),
    # The job: "transcribe" (the text is owed), "callback" (the transcribeCallback is owed),
    # "done"; `node_id` is the node that owes it (a restarted node finishes its own).
    Column("job", String(16), nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("callback_url", Text),  # absolute; NULL: no transcribeCallback
    Column("error", Text),
    Column("date_created", UTCDateTime(), nullable=False),
    Column("date_updated", UTCDateTime(), nullable=False),
    Index("ix_transcriptions_account_created", "account_sid", "date_created"),
    Index("ix_transcriptions_recording", "recording_sid"),
    Index("ix_transcriptions_job", "job", "node_id"),
)

OUTBOX_OPEN_STATES = ("pending", "sending")
"""An outbox row still to be sent (``delivered`` and ``failed`` rows are done)."""


def outbox_is_open(table: Any) -> Any:
    """`table`'s (the outbox's, or an alias of it) row is open: an OR of equalities with the
    states written in the statement, not bound, and no expanding IN (the outbox's statements
    run as compiled on the driver). The partial index of open rows is written with this same
    test, so SQLite's and PostgreSQL's planners see that a statement's rows lie in it."""
    return or_(*(table.c.state == literal_column(f"'{state}'") for state in OUTBOX_OPEN_STATES))

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text),
    Column("last_error_code", Integer),
    Column("idempotency_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Column("claimed_by", String(128)),
    Column("lease_until", UTCDateTime()),
    # What the callback reports, e.g. "RE…:completed": queued at most once (NULL: no such rule).
    Column("event", String(128)),
    # The due rows in the order a claim round takes them (soonest due, then oldest): a round
    # walks it and stops at its limit. Without `id`, PostgreSQL sorted every due row first
    # whenever its statistics lagged a burst: 173 ms a round with 2,000 queued (issue #13).
    Index("ix_outbox_due", "state", "next_attempt_at", "id"),
    Index("ix_outbox_key_id", "key", "id"),
    Index("ux_outbox_event", "event", unique=True),
)
# Each key's open rows, oldest first: a key's head is one lookup, however many of its rows are
# done (the head test of every claim candidate: `adapter.callbacks.lease`).
Index("ix_outbox_open_key_id", outbox_table.c.key, outbox_table.c.id,
      postgresql_where=outbox_is_open(outbox_table), sqlite_where=outbox_is_open(outbox_table))

owed_requests_table = Table(
    "owed_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(34), nullable=False),
    Column("kind", String(32), nullable=False),
    # The RecordingSid of a record-action; "" for call-status.
    Column("ref", String(34), nullable=False),
    Column("url", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("data", Text, nullable=False),  # JSON: events (call-status)
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_owed_requests_call", "call_sid"),
    Index("ix_owed_requests_ref", "ref"),
)

call_owners_table = Table(
    "call_owners",
    metadata,
    Column("call_sid", String(34), primary_key=True),
    Column("node_id", String(128), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
)
