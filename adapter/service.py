"""The running adapter: database, callback outbox, PBX driver and HTTP server, started and
stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from adapter import log_context
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.owed_requests import note_call_status
from adapter.callbacks.webhook_client import WebhookClient
from adapter.config import Config
from adapter.db.store import CallRow, Store
from adapter.http import build_app
from adapter.http.health import HealthChecks
from adapter.interpreter import CallSession, SessionContext
from adapter.interpreter.outbound import OutboundCall, send_call_status
from adapter.metrics import Metrics
from adapter.node import node_identity
from adapter.pbx.base import IncomingCall, OriginateRequest, PbxDriver, PbxError
from adapter.pbx.factory import make_driver
from adapter.prompts import PromptCache
from adapter.recordings import layout
from adapter.recovery.claims import claim_call, claim_insert
from adapter.recovery.run import RecoveryReport
from adapter.recovery.startup import recover_at_start, sweep_forever
from adapter.startup_errors import (
    DatabaseUnreachable,
    ListenFailed,
    StartFailed,
    check_writable,
)
from adapter.tasks import TaskSet
from adapter.transcription import TranscriptionPool, make_engine
from adapter.transcription.jobs import TranscriptionJobs

__all__ = ["Adapter"]

log = logging.getLogger(__name__)


@dataclass
class Adapter:
    config: Config
    metrics: Metrics = field(default_factory=Metrics)
    sessions: dict[str, CallSession] = field(default_factory=dict)  # live calls by CallSid
    # CallSids of finished calls, in order: lets tests and the demo wait for a call's end.
    finished: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    # REST-originated calls not answered yet, by CallSid.
    pending_outbound: dict[str, OutboundCall] = field(default_factory=dict)
    ctx: SessionContext | None = None
    driver: PbxDriver | None = None
    _server: uvicorn.Server | None = None
    _callback_client: WebhookClient | None = None
    _server_task: asyncio.Task[None] | None = None
    node_id: str = ""
    # Startup recovery of what a killed run left unfinished (adapter/recovery/).
    recovery: asyncio.Task[RecoveryReport] | None = None
    _sweeps: asyncio.Task[None] | None = None
    # The service's own background tasks: the recovery, the sweeps, the HTTP server.
    _tasks: TaskSet = field(default_factory=lambda: TaskSet("service"))
    _http_socket: socket.socket | None = None
    # `<Record transcribe>` jobs and their engine (adapter/transcription/).
    transcriptions: TranscriptionJobs | None = None

    async def start(self, *, serve_http: bool = True) -> None:
        config = self.config
        started = datetime.now(UTC)
        self.node_id = node_identity(config.data_dir)
        check_writable(config.data_dir, "storage.data_dir")
        check_writable(config.media_dir, "storage.media_dir")
        spool = config.spool_dir_local
        check_writable(layout.spool_recordings(spool), f"{config.pbx}.spool_dir_local")
        if serve_http:  # bound first: a port in use is found before anything is started
            self._http_socket = _bind(config.http.listen_host, config.http.listen_port)
        try:
            store = await Store.open(config.database_url)
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            raise DatabaseUnreachable(config.database_url, exc) from exc
        egress = config.webhooks.egress_policy()
        webhooks = WebhookClient(account_sid=config.account_sid, auth_token=config.auth_token,
                                 egress=egress, metrics=self.metrics, kind="twiml")
        await webhooks.start()
        # Callbacks get their own client: a slow callback receiver must never hold up the
        # TwiML fetches of live calls.
        self._callback_client = WebhookClient(
            account_sid=config.account_sid, auth_token=config.auth_token, egress=egress,
            metrics=self.metrics, kind="callback",
        )
        await self._callback_client.start()
        outbox = Outbox(store, self._callback_client, node_id=self.node_id, metrics=self.metrics)
        await outbox.start()
        prompts = PromptCache(layout.prompts_dir(spool), default_voice=config.tts_voice,
                              egress=egress)
        pool = TranscriptionPool(make_engine(config.transcription), config.transcription.workers)
        self.transcriptions = TranscriptionJobs(store, outbox, config, pool,
                                                node_id=self.node_id)
        self.ctx = SessionContext(config, store, outbox, webhooks, prompts, metrics=self.metrics,
                                  transcriptions=self.transcriptions)
        self.driver = make_driver(config)
        driver = self.driver
        self.metrics.gauge("calls_active", lambda: float(len(self.sessions)))
        self.metrics.gauge("pbx_connected", lambda: float(driver.connected))
        try:
            await driver.start(self._on_call)
        except BaseException:
            self.driver = None  # nothing of it is left running to stop
            raise
        self.recovery = self._tasks.spawn(recover_at_start(
            store, outbox, config, node_id=self.node_id, started_before=started,
            hang_up=driver.hang_up_channel), "startup-recovery")
        self._sweeps = self._tasks.spawn(
            sweep_forever(store, outbox, config, node_id=self.node_id), "recording-sweep")
        # Owed transcriptions of a killed run, once recovery has finalised their recordings.
        self._tasks.spawn(self.transcriptions.resume_forever(self.recovery),
                          "transcription-resume")
        if serve_http:
            health = HealthChecks(driver, store, {"data_dir": config.data_dir,
                                                  "media_dir": config.media_dir,
                                                  "spool_dir": config.spool_dir_local})
            app = build_app(config, store, self.metrics, health, self.sessions, self)
            self._server = uvicorn.Server(uvicorn.Config(
                app, host=config.http.listen_host, port=config.http.listen_port,
                log_level="warning", lifespan="off",
            ))
            self._server_task = self._tasks.spawn(
                self._server.serve(sockets=[self._http_socket] if self._http_socket else None),
                "http-server")
            while not self._server.started:
                if self._server_task.done():
                    self._server_task.result()
                    raise RuntimeError("HTTP server stopped at start")
                await asyncio.sleep(0.01)
        log.info("twiml-pbx-adapter ready: HTTP %s, PBX %s", config.http.public_base_url,
                 driver.name)

    async def queue_call(self, outbound: OutboundCall) -> None:
        """REST ``POST /Calls.json``, first step: the call row (``queued``) and its
        ``initiated`` status callback; `dial_call` then originates it."""
        assert self.ctx is not None and self.driver is not None
        now = datetime.now(UTC)
        await self.ctx.store.add_call(CallRow(
            sid=outbound.call_sid, account_sid=self.config.account_sid, from_=outbound.from_,
            to=outbound.to, direction="outbound-api", status="queued", caller_name=None,
            pbx=self.config.pbx, pbx_channel="", date_created=now, date_updated=now,
        ))
        if outbound.status_callback is not None:
            # Owed until the call ends: recovery sends the last one if the adapter dies first.
            await note_call_status(self.ctx.store, outbound.call_sid, outbound.status_callback,
                                   outbound.status_callback_method,
                                   sorted(outbound.status_callback_events))
        self.pending_outbound[outbound.call_sid] = outbound
        await send_call_status(self.ctx, outbound, "initiated", "queued")

    async def dial_call(self, outbound: OutboundCall) -> None:
        """The Originate of a queued call; the session starts when the call is answered
        (`_on_call`), or `_outbound_failed` reports why it never was."""
        assert self.ctx is not None and self.driver is not None
        try:
            channel = await self.driver.originate(
                OriginateRequest(outbound.call_sid, outbound.target, outbound.from_,
                                 outbound.timeout),
                self._outbound_failed,
                on_ringing=self._outbound_ringing,
            )
            if channel and outbound.call_sid in self.pending_outbound:
                # Known before the answer, so a restarted adapter can find the channel.
                await self.ctx.store.update_call(outbound.call_sid, pbx_channel=channel)
        except PbxError as exc:
            log.error("outbound call %s: %s", outbound.call_sid, exc)
            await self._outbound_failed(outbound.call_sid, "failed")

    async def cancel_call(self, call_sid: str) -> bool:
        """REST ``Status=canceled`` (or ``completed``) of a call not answered yet: the PBX
        ends the attempt and `_outbound_failed` reports it ``canceled``. False if the call is
        not waiting for an answer (any more)."""
        outbound = self.pending_outbound.get(call_sid)
        if outbound is None or self.driver is None:
            return False
        outbound.canceled = True  # before the PBX answers: its failure may come first
        try:
            outbound.canceled = await self.driver.cancel_originate(call_sid)
        except PbxError as exc:
            log.error("outbound call %s: cancelling failed: %s", call_sid, exc)
            outbound.canceled = False
        return outbound.canceled

    async def _outbound_ringing(self, call_sid: str) -> None:
        assert self.ctx is not None
        outbound = self.pending_outbound.get(call_sid)
        if outbound is None or outbound.ringing:
            return
        outbound.ringing = True
        await self.ctx.store.update_call(call_sid, status="ringing")
        await send_call_status(self.ctx, outbound, "ringing", "ringing")

    async def _outbound_failed(self, call_sid: str, status: str) -> None:
        assert self.ctx is not None
        outbound = self.pending_outbound.pop(call_sid, None)
        if outbound is not None and outbound.canceled:
            status = "canceled"
        log.info("outbound call %s: %s", call_sid, status)
        now = datetime.now(UTC)
        await self.ctx.store.update_call(call_sid, status=status, end_time=now, duration=0)
        if outbound is not None:
            await send_call_status(self.ctx, outbound, "completed", status, duration=0)
        self.finished.put_nowait(call_sid)

    async def _on_call(self, incoming: IncomingCall) -> None:
        assert self.ctx is not None
        outbound = None
        route = None
        if incoming.outbound_call_sid is not None:
            outbound = self.pending_outbound.pop(incoming.outbound_call_sid, None)
            if outbound is None:
                log.error("answered outbound call %r is unknown; hanging up",
                          incoming.outbound_call_sid)
                await incoming.control.hangup()
                return
        else:
            route = self.config.route_for(incoming.to)
            if route is None:
                log.error("call to %s: no [[numbers]] entry and no '*' route; hanging up",
                          incoming.to)
                await incoming.control.hangup()
                return
        if outbound is None:  # claimed in the transaction that adds the call's row
            session = CallSession(self.ctx, incoming, route,
                                  claim=lambda sid: claim_insert(sid, self.node_id))
        else:
            session = CallSession(self.ctx, incoming, route, outbound=outbound)
            await claim_call(self.ctx.store, session.call_sid, self.node_id)
        self.sessions[session.call_sid] = session
        self.metrics.inc("calls")
        try:
            with log_context.call(session.call_sid):
                await session.run()
        finally:
            self.sessions.pop(session.call_sid, None)
            self.finished.put_nowait(session.call_sid)

    async def stop(self) -> None:
        for task in (self.recovery, self._sweeps):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._server is not None:
            self._server.should_exit = True
            if self._server_task is not None:
                with contextlib.suppress(Exception):
                    await self._server_task
        await self._tasks.cancel_all()  # nothing of them may outlive the service
        if self._http_socket is not None:
            self._http_socket.close()
            self._http_socket = None
        if self.driver is not None:
            await self.driver.stop()
        if self.transcriptions is not None:
            await self.transcriptions.stop()
        if self.ctx is not None:
            await self.ctx.outbox.stop()
            if self._callback_client is not None:
                await self._callback_client.close()
            await self.ctx.webhooks.close()
            await self.ctx.prompts.close()
            await self.ctx.store.close()

    async def run_forever(self) -> None:
        """Start, then run until cancelled. `StartFailed` if start-up fails (whatever had
        been started is stopped again first)."""
        try:
            await self.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await self.stop()
            raise StartFailed(exc) from exc
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """The HTTP API's listening socket (uvicorn serves on it); `ListenFailed` if it cannot be
    had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenFailed("http.listen", host, port, exc) from exc
    return sock
