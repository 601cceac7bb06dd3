"""Outbox: durable, ordered callbacks delivered to a real local receiver, on SQLite and
PostgreSQL (`db_url`); claims shared by several nodes; Twilio's connection overrides."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from twilio.request_validator import RequestValidator

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import Store
from adapter.metrics import Metrics

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
    latency: float = 0.01

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
        if path == "/slow":
            await asyncio.sleep(rx.latency)  # a receiver that takes its time, not a sync
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
    with caplog.at_level(logging.WARNING, logger="adapter.callbacks"):
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
    with caplog.at_level(logging.WARNING, logger="adapter.callbacks"):
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


# --- connection overrides (#ct, #rt, #tt, #rc, #rp) -------------------------------------------


async def test_rc_and_rp_retry_within_one_attempt(rx: Receiver, store: Store,
                                                  outbox: Outbox) -> None:
    rx.fail_first["/cb"] = 2
    row_id = await outbox.enqueue("RE1", rx.base + "/cb#rc=2&rp=5xx", "POST", params(1))
    await outbox.wait_idle(5)
    assert [h.answered for h in rx.on("/cb")] == [500, 500, 200]
    assert all(h.signed for h in rx.on("/cb"))  # signed without the fragment
    assert (await states(store))[row_id] == ("delivered", 1)  # one outbox attempt


async def test_default_policy_does_not_retry_5xx_at_once(rx: Receiver, store: Store,
                                                         outbox: Outbox) -> None:
    # Twilio's default rp is ct: a 500 ends the attempt; the outbox retries after back-off.
    rx.fail_first["/cb"] = 1
    row_id = await outbox.enqueue("RE1", rx.base + "/cb#rc=3", "POST", params(1))
    await outbox.wait_idle(5)
    assert [h.answered for h in rx.on("/cb")] == [500, 200]
    assert (await states(store))[row_id] == ("delivered", 2)


async def test_invalid_retry_policy_fails_with_11243_without_a_request(
    rx: Receiver, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.callbacks"):
        await outbox.enqueue("RE1", rx.base + "/cb#rp=sometimes", "POST", params(1))
        await outbox.wait_idle(5)
    assert rx.hits == []
    (failed,) = await outbox.failed()
    assert (failed.attempts, failed.last_error_code) == (1, 11243)
    assert any("11243" in r.getMessage() for r in caplog.records)


async def test_rp_4xx_retries_a_rejected_callback(rx: Receiver, outbox: Outbox) -> None:
    await outbox.enqueue("RE1", rx.base + "/reject#rc=1&rp=4xx", "POST", params(1))
    await outbox.wait_idle(5)
    # 2 requests per attempt (rc=1) and, as rp asks for 4xx retries, all 4 outbox attempts.
    assert len(rx.on("/reject")) == 8
    (failed,) = await outbox.failed()
    assert (failed.attempts, failed.last_error_code) == (4, 11200)


async def test_explicit_total_time_ends_the_attempt_with_11203(
    rx: Receiver, store: Store, client: WebhookClient
) -> None:
    box = Outbox(store, client, max_attempts=1, backoff=FAST)
    await box.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await box.enqueue("RE1", rx.base + "/hang#tt=300&rc=0", "POST", params(1))
        await box.wait_idle(5)
        assert loop.time() - started < 2.0  # not the client's own 5 s read timeout
        (failed,) = await box.failed()
        assert failed.last_error_code == 11203
    finally:
        await box.stop()


async def test_out_of_range_override_is_clamped_and_logged(
    rx: Receiver, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.callbacks"):
        await outbox.enqueue("RE1", rx.base + "/cb#rc=9", "POST", params(1))
        await outbox.wait_idle(5)
    assert len(rx.on("/cb")) == 1
    assert any("rc=9 is outside 0-5" in r.getMessage() for r in caplog.records)


# --- several nodes ---------------------------------------------------------------------------


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    return postgres_url


async def test_two_nodes_deliver_each_callback_once_in_order(
    rx: Receiver, pg_url: str, client: WebhookClient
) -> None:
    stores = [await Store.open(pg_url), await Store.open(pg_url)]
    counts = [Metrics(), Metrics()]
    nodes = [Outbox(s, client, backoff=FAST, node_id=f"node-{i}", poll_interval=0.05,
                    max_parallel=4, metrics=counts[i]) for i, s in enumerate(stores)]
    try:
        for node in nodes:
            await node.start()
        keys, per_key = 8, 6
        for seq in range(per_key):
            for k in range(keys):
                # Enqueued through both nodes, as two adapters would.
                await nodes[k % 2].enqueue(f"RE{k}", rx.base + "/slow", "POST",
                                           [("Key", f"RE{k}"), ("Seq", str(seq))])
        await asyncio.gather(*(node.wait_idle(20) for node in nodes))
        tokens = [h.token for h in rx.on("/slow")]
        assert len(tokens) == keys * per_key
        assert len(set(tokens)) == keys * per_key  # no callback sent twice
        for k in range(keys):
            seqs = [int(h.form["Seq"]) for h in rx.on("/slow") if h.form["Key"] == f"RE{k}"]
            assert seqs == list(range(per_key))
        async with stores[0].engine.connect() as conn:
            rows = (await conn.execute(select(outbox_table))).mappings().all()
        by_node = {r["claimed_by"] for r in rows}
        assert by_node == {None}  # every claim released
        assert {r["state"] for r in rows} == {"delivered"}
        per_node = [m.counters[("callbacks", "delivered")] for m in counts]
        assert sum(per_node) == keys * per_key and min(per_node) > 0  # both nodes worked
        print(f"\ntwo nodes: {len(rows)} callbacks, delivered {len(tokens)} "
              f"(per node {per_node}), duplicates {len(tokens) - len(set(tokens))}")
    finally:
        for node in nodes:
            await node.stop()
        for s in stores:
            await s.close()


async def test_a_dead_nodes_claim_is_taken_over_after_its_lease(
    rx: Receiver, pg_url: str, client: WebhookClient
) -> None:
    store = await Store.open(pg_url)
    try:
        writer = Outbox(store, client)
        row_id = await writer.enqueue("RE1", rx.base + "/cb", "POST", params(1))
        lease_end = datetime.now(UTC) + timedelta(seconds=1.5)
        async with store.engine.begin() as conn:  # what a node killed mid-send leaves behind
            await conn.execute(
                update(outbox_table).where(outbox_table.c.id == row_id)
                .values(state="sending", attempts=1, claimed_by="dead-node",
                        lease_until=lease_end)
            )
        survivor = Outbox(store, client, backoff=FAST, node_id="survivor", poll_interval=0.05)
        await survivor.start()
        try:
            with pytest.raises(TimeoutError):
                await survivor.wait_idle(0.8)
            assert rx.hits == []  # the lease still holds: not taken over
            await survivor.wait_idle(5)
            assert datetime.now(UTC) >= lease_end
            assert len(rx.on("/cb")) == 1
            assert (await states(store))[row_id] == ("delivered", 2)
        finally:
            await survivor.stop()
    finally:
        await store.close()


async def test_starting_node_leaves_another_live_nodes_claim_alone(
    rx: Receiver, pg_url: str, client: WebhookClient
) -> None:
    stores = [await Store.open(pg_url), await Store.open(pg_url)]
    first = Outbox(stores[0], client, backoff=FAST, node_id="first", poll_interval=0.05)
    second = Outbox(stores[1], client, backoff=FAST, node_id="second", poll_interval=0.05)
    try:
        await first.start()
        row_id = await first.enqueue("RE1", rx.base + "/hang", "POST", params(1))
        await rx.hung.wait()  # first is sending it, held by the receiver
        await second.start()
        (row,) = await second.pending()
        assert (row.id, row.state, row.claimed_by) == (row_id, "sending", "first")
        rx.release.set()
        await asyncio.gather(first.wait_idle(5), second.wait_idle(5))
        assert len(rx.on("/hang")) == 1
        assert (await states(stores[0]))[row_id] == ("delivered", 1)
    finally:
        await first.stop()
        await second.stop()
        for s in stores:
            await s.close()


async def test_restarted_node_with_the_same_id_resends_at_once(
    rx: Receiver, pg_url: str, client: WebhookClient
) -> None:
    store = await Store.open(pg_url)
    try:
        row_id = await Outbox(store, client).enqueue("RE1", rx.base + "/cb", "POST", params(1))
        async with store.engine.begin() as conn:  # killed mid-send, lease far away
            await conn.execute(
                update(outbox_table).where(outbox_table.c.id == row_id)
                .values(state="sending", attempts=1, claimed_by="host:/data",
                        lease_until=datetime.now(UTC) + timedelta(hours=1))
            )
        again = Outbox(store, client, backoff=FAST, node_id="host:/data")
        await again.start()
        try:
            await again.wait_idle(5)
        finally:
            await again.stop()
        assert len(rx.on("/cb")) == 1
    finally:
        await store.close()


async def test_old_table_gets_the_claim_columns_and_todays_indexes(
    tmp_path: Path, rx: Receiver, client: WebhookClient
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:  # the outbox table of the first release
        await conn.execute(text(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(255) NOT "
            "NULL, url TEXT NOT NULL, method VARCHAR(8) NOT NULL, params TEXT NOT NULL, state "
            "VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, next_attempt_at DATETIME NOT "
            "NULL, last_error TEXT, last_error_code INTEGER, idempotency_token VARCHAR(64) NOT "
            "NULL, created_at DATETIME NOT NULL, delivered_at DATETIME)"))
        await conn.execute(text(
            "CREATE INDEX ix_outbox_state_due ON outbox (state, next_attempt_at)"))
        await conn.execute(text("CREATE INDEX ix_outbox_key_id ON outbox (key, id)"))
    await engine.dispose()
    store = await Store.open(url)
    async with store.engine.connect() as conn:
        indexes = {row[0] for row in await conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' "
            "AND name NOT LIKE 'sqlite_%'"))}
    assert indexes == {"ix_outbox_due", "ix_outbox_key_id", "ix_outbox_open_key_id",
                       "ux_outbox_event"}
    box = Outbox(store, client, backoff=FAST)
    try:
        await box.start()
        await box.enqueue("RE1", rx.base + "/cb", "POST", params(1))
        await box.wait_idle(5)
        assert len(rx.on("/cb")) == 1
    finally:
        await box.stop()
        await store.close()


async def test_metrics_count_outcomes(rx: Receiver, store: Store, client: WebhookClient) -> None:
    metrics = Metrics()
    box = Outbox(store, client, max_attempts=2, backoff=FAST, metrics=metrics)
    await box.start()
    try:
        rx.fail_first["/cb"] = 1
        await box.enqueue("RE1", rx.base + "/cb", "POST", params(1))
        await box.enqueue("RE2", rx.base + "/reject", "POST", params(1))
        await box.wait_idle(5)
    finally:
        await box.stop()
    assert metrics.counters[("callbacks", "delivered")] == 1
    assert metrics.counters[("callbacks", "retrying")] == 1
    assert metrics.counters[("callbacks", "failed")] == 1
    assert "twiml_adapter_callbacks_open 0.0" in metrics.render()


async def test_two_processes_on_one_postgresql_deliver_each_callback_once(
    rx: Receiver, pg_url: str, store_pg: Store, client: WebhookClient
) -> None:
    writer = Outbox(store_pg, client)
    keys, per_key = 10, 5
    for seq in range(per_key):
        for k in range(keys):
            await writer.enqueue(f"RE{k}", rx.base + "/slow", "POST",
                                 [("Key", f"RE{k}"), ("Seq", str(seq))])
    rx.latency = 0.1  # long enough for both processes to be at work at once
    worker = Path(__file__).parents[1] / "support" / "outbox_worker.py"
    processes = [await asyncio.create_subprocess_exec(
        sys.executable, str(worker), pg_url, f"process-{i}", stdout=asyncio.subprocess.PIPE)
        for i in range(2)]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(p.communicate() for p in processes)), 60)
    assert [p.returncode for p in processes] == [0, 0]
    per_process = [int(out.decode().split()[-1]) for out, _ in outputs]
    assert sum(per_process) == keys * per_key and min(per_process) > 0
    tokens = [h.token for h in rx.on("/slow")]
    assert len(tokens) == len(set(tokens)) == keys * per_key
    for k in range(keys):
        assert [int(h.form["Seq"]) for h in rx.on("/slow") if h.form["Key"] == f"RE{k}"] == (
            list(range(per_key)))
    assert {state for state, _ in (await states(store_pg)).values()} == {"delivered"}
    print(f"\ntwo processes: {keys * per_key} callbacks, delivered {len(tokens)} (per process "
          f"{per_process}), duplicates {len(tokens) - len(set(tokens))}")


@pytest.fixture
async def store_pg(pg_url: str) -> AsyncIterator[Store]:
    s = await Store.open(pg_url)
    yield s
    await s.close()
