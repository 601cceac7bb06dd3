"""Outbox: durable, ordered callbacks delivered to a real local receiver."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from adapter.outbox import Outbox, outbox_table
from adapter.recordings.store import Store
from adapter.webhooks import WebhookClient

TOKEN = "outbox-auth-token"
ACCOUNT = "AC" + "c" * 32
FAST = (0.01, 0.02, 0.04)


@dataclass(frozen=True)
class Hit:
    path: str
    form: dict[str, str]
    token: str | None
    signed: bool
    answered: int


@dataclass
class Receiver:
    base: str = ""
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> 500s before a 200
    hits: list[Hit] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    b_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


def _app(rx: Receiver) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        path = request.path
        form = await request.post() if request.method == "POST" else MultiDictProxy(MultiDict())
        url = f"http://{request.host}{request.raw_path}"
        signed = RequestValidator(TOKEN).validate(
            url, form, request.headers.get("X-Twilio-Signature", "")
        )
        if path == "/hang":
            rx.hung.set()
            await rx.release.wait()
        if path == "/key-b":
            rx.b_arrived.set()
        if path == "/key-a-gate":
            await rx.b_arrived.wait()
        status = 200
        if path == "/reject":
            status = 404
        elif rx.fail_first.get(path, 0) > 0:
            rx.fail_first[path] -= 1
            status = 500
        rx.hits.append(
            Hit(path, {k: str(v) for k, v in form.items()},
                request.headers.get("I-Twilio-Idempotency-Token"), bool(signed), status)
        )
        if path == "/big":
            return web.Response(body=b"z" * 100_000)
        return web.Response(status=status, text="<Response/>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    runner = web.AppRunner(_app(receiver), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield receiver
    receiver.release.set()
    receiver.b_arrived.set()
    await runner.cleanup()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, read_timeout=5.0) as c:
        yield c


@pytest.fixture
async def outbox(store: Store, client: WebhookClient) -> AsyncIterator[Outbox]:
    box = Outbox(store, client, max_attempts=4, backoff=FAST)
    await box.start()
    yield box
    await box.stop()


def params(seq: int) -> list[tuple[str, str]]:
    return [("RecordingSid", "RE" + "1" * 32), ("Seq", str(seq)), ("Note", "Zoë")]


async def states(store: Store) -> dict[int, tuple[str, int]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_table))).mappings().all()
    return {r["id"]: (r["state"], r["attempts"]) for r in rows}


# --- delivery and retries --------------------------------------------------------------------


async def test_retries_5xx_until_delivered_with_one_token(
    rx: Receiver, store: Store, outbox: Outbox
) -> None:
    rx.fail_first["/cb"] = 2
    row_id = await outbox.enqueue("RE1", rx.base + "/cb", "POST", params(1))
    await outbox.wait_idle(5)
    hits = rx.on("/cb")
    assert [h.answered for h in hits] == [500, 500, 200]
    assert all(h.signed for h in hits)
    assert hits[0].form == dict(params(1))
    assert hits[0].token is not None
    assert {h.token for h in hits} == {hits[0].token}
    assert (await states(store))[row_id] == ("delivered", 3)
    assert await outbox.pending() == []
    assert await outbox.failed() == []


async def test_get_callback_signed_with_params_in_query(
    rx: Receiver, store: Store, outbox: Outbox
) -> None:
    await outbox.enqueue("RE1", rx.base + "/get-cb?x=1", "get", params(7))
    await outbox.wait_idle(5)
    (hit,) = rx.on("/get-cb")
    assert hit.signed
    assert hit.form == {}


async def test_4xx_is_final(
    rx: Receiver, store: Store, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.outbox"):
        row_id = await outbox.enqueue("RE1", rx.base + "/reject", "POST", params(1))
        await outbox.wait_idle(5)
    assert len(rx.on("/reject")) == 1
    (failed,) = await outbox.failed()
    assert (failed.id, failed.state, failed.attempts) == (row_id, "failed", 1)
    assert failed.last_error_code == 11200
    assert failed.last_error is not None and "404" in failed.last_error
    assert any(r.levelno == logging.WARNING and "/reject" in r.getMessage()
               for r in caplog.records)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_gives_up_after_max_attempts_and_logs_warning(
    store: Store, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/cb"
    with caplog.at_level(logging.WARNING, logger="adapter.outbox"):
        await outbox.enqueue("RE1", url, "POST", params(1))
        await outbox.wait_idle(5)
    (failed,) = await outbox.failed()
    assert (failed.attempts, failed.last_error_code) == (4, 11205)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "4 attempt" in warnings[0].getMessage()


async def test_2xx_with_oversized_body_counts_as_delivered(
    rx: Receiver, store: Store, outbox: Outbox
) -> None:
    row_id = await outbox.enqueue("RE1", rx.base + "/big", "POST", params(1))
    await outbox.wait_idle(5)
    assert len(rx.on("/big")) == 1
    assert (await states(store))[row_id] == ("delivered", 1)


async def test_backoff_delays_the_retry(rx: Receiver, store: Store, client: WebhookClient) -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    box = Outbox(store, client, backoff=(30,), clock=lambda: now)
    await box.start()
    try:
        rx.fail_first["/cb"] = 1
        await box.enqueue("RE1", rx.base + "/cb", "POST", params(1))
        with pytest.raises(TimeoutError):
            await box.wait_idle(0.3)
        (row,) = await box.pending()
        assert (row.state, row.attempts, row.last_error_code) == ("pending", 1, 11200)
        assert row.next_attempt_at == now + timedelta(seconds=30)
        assert len(rx.on("/cb")) == 1
    finally:
        await box.stop()


# --- ordering --------------------------------------------------------------------------------


async def test_order_per_key_and_keys_in_parallel(rx: Receiver, outbox: Outbox) -> None:
    # Key A's first callback fails twice; key A's later callbacks must wait for it.
    # Key A's first callback is held until key B's arrives: only parallel keys finish.
    rx.fail_first["/key-a-gate"] = 2
    await outbox.enqueue("A", rx.base + "/key-a-gate", "POST", params(1))
    for seq in range(2, 6):
        await outbox.enqueue("A", rx.base + "/key-a", "POST", params(seq))
    await outbox.enqueue("B", rx.base + "/key-b", "POST", params(1))
    await outbox.wait_idle(10)

    key_a = [(h.form["Seq"], h.answered) for h in rx.hits if h.path.startswith("/key-a")]
    assert key_a == [("1", 500), ("1", 500), ("1", 200), ("2", 200), ("3", 200), ("4", 200),
                     ("5", 200)]
    assert len(rx.on("/key-b")) == 1


async def test_failed_row_releases_its_key(rx: Receiver, outbox: Outbox) -> None:
    await outbox.enqueue("A", rx.base + "/reject", "POST", params(1))
    await outbox.enqueue("A", rx.base + "/after", "POST", params(2))
    await outbox.wait_idle(5)
    assert [h.path for h in rx.hits] == ["/reject", "/after"]


# --- durability ------------------------------------------------------------------------------


async def test_enqueue_commits_and_does_not_wait_for_delivery(
    rx: Receiver, db_url: str, outbox: Outbox
) -> None:
    async with asyncio.timeout(2):
        row_id = await outbox.enqueue("RE1", rx.base + "/hang", "POST", params(1))
    await rx.hung.wait()  # the request is in flight and held by the receiver
    other = await Store.open(db_url)  # a second connection sees the committed row
    try:
        seen = await Outbox(other, WebhookClient(account_sid=ACCOUNT, auth_token="x")).pending()
        assert [(r.id, r.state) for r in seen] == [(row_id, "sending")]
    finally:
        await other.close()
    rx.release.set()
    await outbox.wait_idle(5)


async def test_restart_delivers_what_was_pending(
    rx: Receiver, db_url: str, client: WebhookClient
) -> None:
    first = await Store.open(db_url)
    never_started = Outbox(first, client)
    ids = [await never_started.enqueue("RE1", rx.base + "/cb", "POST", params(i)) for i in (1, 2)]
    assert [r.id for r in await never_started.pending()] == ids
    await first.close()
    assert rx.hits == []

    second = await Store.open(db_url)
    box = Outbox(second, client, backoff=FAST)
    await box.start()
    try:
        await box.wait_idle(5)
        assert [h.form["Seq"] for h in rx.on("/cb")] == ["1", "2"]
        assert all(h.signed for h in rx.hits)
        assert await box.pending() == []
    finally:
        await box.stop()
        await second.close()


async def test_row_left_sending_by_a_crash_is_sent_again(
    rx: Receiver, db_url: str, client: WebhookClient
) -> None:
    first = await Store.open(db_url)
    row_id = await Outbox(first, client).enqueue("RE1", rx.base + "/cb", "POST", params(1))
    async with first.engine.begin() as conn:  # what a crash mid-request leaves behind
        await conn.execute(
            update(outbox_table).where(outbox_table.c.id == row_id)
            .values(state="sending", attempts=1)
        )
    await first.close()

    second = await Store.open(db_url)
    box = Outbox(second, client, backoff=FAST)
    await box.start()
    try:
        await box.wait_idle(5)
        assert len(rx.on("/cb")) == 1
        assert (await states(second))[row_id] == ("delivered", 2)
    finally:
        await box.stop()
        await second.close()


async def test_stop_abandons_in_flight_and_next_start_resends(
    rx: Receiver, store: Store, client: WebhookClient
) -> None:
    box = Outbox(store, client, backoff=FAST)
    await box.start()
    row_id = await box.enqueue("RE1", rx.base + "/hang", "POST", params(1))
    await rx.hung.wait()
    await box.stop()
    (row,) = await box.pending()
    assert (row.id, row.state) == (row_id, "pending")

    rx.release.set()
    again = Outbox(store, client, backoff=FAST)
    await again.start()
    try:
        await again.wait_idle(5)
    finally:
        await again.stop()
    delivered = [h for h in rx.on("/hang") if h.answered == 200]
    assert delivered
    assert {h.token for h in delivered} == {row.idempotency_token}
    assert (await states(store))[row_id][0] == "delivered"


async def test_wait_idle_needs_a_started_outbox(store: Store, client: WebhookClient) -> None:
    with pytest.raises(RuntimeError):
        await Outbox(store, client).wait_idle(0.1)
