"""What a call session needs from the running service, in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.config import Config
from adapter.db.store import Store
from adapter.metrics import Metrics
from adapter.prompts import PromptCache
from adapter.transcription.jobs import TranscriptionJobs

__all__ = ["SessionContext"]


@dataclass(slots=True)
class SessionContext:
    config: Config
    store: Store
    outbox: Outbox
    webhooks: WebhookClient
    prompts: PromptCache
    # Audio post-processing runs in threads, one job at a time: on a 2-core box that leaves a core
    # for the event loop and the PBX (docs/recordings-media.md).
    postprocess_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    # The service's metrics (post-processing time, active recordings; adapter/metrics.py).
    metrics: Metrics = field(default_factory=Metrics)
    # `<Record transcribe>` jobs (adapter/transcription/jobs.py); None: not transcribed.
    transcriptions: TranscriptionJobs | None = None
