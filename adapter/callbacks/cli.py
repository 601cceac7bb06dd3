"""``twiml-adapter callbacks [--pending | --failed | --all] [--json]``: the callback outbox.

Lists the outbox rows of the configured database, oldest first: by default those that still
need attention (pending, sending and failed), or only the pending (``--pending``: pending and
sending), only the failed (``--failed``), or every row (``--all``). One line per callback with
its state, attempts, key (the RecordingSid or CallSid), method, URL, when it is due (or was
delivered), who holds it while it is being sent, and the last error with Twilio's code.
``--json`` prints one JSON object per line instead.

Passwords in callback URLs (``https://user:secret@host/...``) are never printed.
The exit status is 0, or 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from adapter.callbacks.rows import OPEN_STATES, OutboxRow, list_outbox_rows
from adapter.db.store import Store
from adapter.errors import ConfigError

__all__ = ["add_callbacks_command", "format_row", "list_callbacks", "run_callbacks_command"]

_SELECTIONS: dict[str, tuple[str, ...] | None] = {
    "attention": (*OPEN_STATES, "failed"),
    "pending": OPEN_STATES,
    "failed": ("failed",),
    "all": None,
}


def add_callbacks_command(commands: Any) -> None:
    """Register ``callbacks`` on the CLI's subparsers (`argparse` ``add_subparsers()``)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "callbacks", help="list queued, failed or delivered status callbacks"
    )
    parser.add_argument("--config", type=Path, help="TOML file (environment variables override it)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pending", dest="selection", action="store_const", const="pending",
                       help="only callbacks not delivered yet (pending or being sent)")
    which.add_argument("--failed", dest="selection", action="store_const", const="failed",
                       help="only callbacks that finally failed")
    which.add_argument("--all", dest="selection", action="store_const", const="all",
                       help="every callback, delivered ones included")
    parser.add_argument("--limit", type=int, default=None, help="at most this many rows")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(selection="attention")


def run_callbacks_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``callbacks`` with the parsed `args`; prints to `out` (standard output)."""
    from adapter.config import load_config

    out = out or sys.stdout
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"twiml-adapter: config error: {exc}", file=sys.stderr)
        return 2
    rows = asyncio.run(list_callbacks(config.database_url, _SELECTIONS[args.selection],
                                      limit=args.limit))
    for row in rows:
        print(json.dumps(_as_json(row)) if args.json else format_row(row), file=out)
    if not args.json:
        print(f"{len(rows)} callback(s)", file=out)
    return 0


async def list_callbacks(
    database_url: str, states: Sequence[str] | None, *, limit: int | None = None
) -> list[OutboxRow]:
    """The outbox rows in `states` (all when None), oldest first (`Store.open` creates or
    upgrades the tables first)."""
    store = await Store.open(database_url)
    try:
        return await list_outbox_rows(store.engine, states, limit=limit)
    finally:
        await store.close()


def _safe_url(url: str) -> str:
    """`url` without a password in its userinfo."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def format_row(row: OutboxRow) -> str:
    """One human-readable line for `row`."""
    if row.state == "delivered" and row.delivered_at is not None:
        when = f"delivered {row.delivered_at:%Y-%m-%d %H:%M:%S}Z"
    elif row.state == "sending":
        lease = f" until {row.lease_until:%H:%M:%S}Z" if row.lease_until else ""
        when = f"sending by {row.claimed_by or '?'}{lease}"
    elif row.state == "pending":
        when = f"due {row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z"
    else:
        when = "gave up"
    line = (f"#{row.id} {row.state} attempts={row.attempts} key={row.key} "
            f"{row.method} {_safe_url(row.url)} ({when})")
    if row.last_error:
        line += f" last error: {row.last_error}"
    return line


def _as_json(row: OutboxRow) -> dict[str, object]:
    def stamp(value: object) -> object:
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {
        "id": row.id, "state": row.state, "attempts": row.attempts, "key": row.key,
        "method": row.method, "url": _safe_url(row.url), "params": dict(row.params),
        "next_attempt_at": stamp(row.next_attempt_at), "created_at": stamp(row.created_at),
        "delivered_at": stamp(row.delivered_at), "claimed_by": row.claimed_by,
        "lease_until": stamp(row.lease_until), "last_error_code": row.last_error_code,
        "last_error": row.last_error,
    }
