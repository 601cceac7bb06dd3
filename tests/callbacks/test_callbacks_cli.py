"""``twiml-adapter callbacks``: the outbox listing, on SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from adapter.callbacks.cli import add_callbacks_command, run_callbacks_command
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import Store

ACCOUNT = "AC" + "d" * 32


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twiml-adapter")
    add_callbacks_command(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(
        f'[account]\nsid = "{ACCOUNT}"\nauth_token = "0123456789abcdef0123"\n'
        f'[storage]\ndata_dir = "{tmp_path}"\ndatabase_url = "{db_url}"\n'
        '[asterisk]\nusername = "adapter"\nsecret = "s3cret-s3cret"\n'
        '[[numbers]]\nnumber = "*"\nvoice_url = "https://app.example/voice"\n'
    )
    return path


async def _fill(db_url: str) -> dict[str, int]:
    store = await Store.open(db_url)
    box = Outbox(store, WebhookClient(account_sid=ACCOUNT, auth_token="x"))
    ids = {
        "pending": await box.enqueue("RE1", "https://app.example/a", "POST", [("N", "1")]),
        "sending": await box.enqueue("RE2", "https://app.example/b#rc=2", "GET", [("N", "2")]),
        "failed": await box.enqueue("RE3", "https://bob:hunter2@app.example/c", "POST", []),
        "delivered": await box.enqueue("RE4", "https://app.example/d", "POST", []),
    }
    async with store.engine.begin() as conn:
        table = outbox_table.c
        await conn.execute(update(outbox_table).where(table.id == ids["sending"]).values(
            state="sending", attempts=1, claimed_by="node-a",
            lease_until=datetime(2030, 1, 1, 12, 0, tzinfo=UTC)))
        await conn.execute(update(outbox_table).where(table.id == ids["failed"]).values(
            state="failed", attempts=5, last_error_code=11205,
            last_error="11205: connection failure: refused"))
        await conn.execute(update(outbox_table).where(table.id == ids["delivered"]).values(
            state="delivered", attempts=1, delivered_at=datetime(2030, 1, 1, tzinfo=UTC)))
    await store.close()
    return ids


def _run(config_file: Path, *flags: str) -> tuple[int, str]:
    args = _parser().parse_args(["callbacks", "--config", str(config_file), *flags])
    out = io.StringIO()
    return run_callbacks_command(args, out), out.getvalue()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ["pending", "sending", "failed"]),
        (("--pending",), ["pending", "sending"]),
        (("--failed",), ["failed"]),
        (("--all",), ["pending", "sending", "failed", "delivered"]),
    ],
)
async def test_selection(config_file: Path, db_url: str, flags: tuple[str, ...],
                         expected: list[str]) -> None:
    ids = await _fill(db_url)
    code, out = await asyncio.to_thread(_run, config_file, *flags)
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [f"#{ids[s]}" for s in expected]
    assert lines[-1] == f"{len(expected)} callback(s)"


async def test_lines_show_state_error_and_claim_but_no_password(
    config_file: Path, db_url: str
) -> None:
    ids = await _fill(db_url)
    _, out = await asyncio.to_thread(_run, config_file, "--all")
    by_id = {line.split()[0]: line for line in out.splitlines()}
    failed = by_id[f"#{ids['failed']}"]
    assert "attempts=5" in failed and "11205: connection failure" in failed
    assert "hunter2" not in out and "bob:***@app.example" in failed
    assert "sending by node-a until 12:00:00Z" in by_id[f"#{ids['sending']}"]
    assert "https://app.example/b#rc=2" in by_id[f"#{ids['sending']}"]
    assert "delivered 2030-01-01 00:00:00Z" in by_id[f"#{ids['delivered']}"]


async def test_json_output(config_file: Path, db_url: str) -> None:
    ids = await _fill(db_url)
    _, out = await asyncio.to_thread(_run, config_file, "--failed", "--json")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["id"] == ids["failed"] and record["last_error_code"] == 11205
    assert record["url"] == "https://bob:***@app.example/c"


def test_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["callbacks", "--config", str(tmp_path / "missing.toml")])
    assert run_callbacks_command(args, io.StringIO()) == 2
    assert "config error" in capsys.readouterr().err
