"""``twiml-adapter serve`` for the fault-injection tests (run as a subprocess by fault_lab.py).

It runs the real CLI entry point, `adapter.cli.main(["serve", ...])`. Until adapter/service.py
starts the startup recovery itself (an ``Adapter.recovery`` field, see docs/reliability.md),
this bootstrap adds exactly that wiring around `Adapter.start`: a stable node id for the
outbox, then `adapter.recovery.start_recovery`, `start_sweeps` (every
``$TWIML_TEST_SWEEP_SECONDS``) and `adapter.pbx.asterisk.reconnect.watch_reconnects` once the
PBX connection is up. When service.py has it, this file only calls the CLI.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

from adapter import cli, service
from adapter.node import node_identity
from adapter.outbox import Outbox
from adapter.pbx.asterisk import AsteriskDriver
from adapter.pbx.asterisk.reconnect import watch_reconnects
from adapter.recovery import start_recovery, start_sweeps


def _wire_recovery() -> None:
    if "recovery" in getattr(service.Adapter, "__dataclass_fields__", {}):
        return  # service.py does it
    original_start = service.Adapter.start
    original_outbox = service.Outbox

    async def start(self: service.Adapter, *, serve_http: bool = True) -> None:
        started = datetime.now(UTC)
        node_id = node_identity(self.config.data_dir)

        def outbox(*args: Any, **kwargs: Any) -> Outbox:
            return original_outbox(*args, node_id=node_id, metrics=self.metrics, **kwargs)

        service.Outbox = outbox  # type: ignore[assignment,misc]
        try:
            await original_start(self, serve_http=serve_http)
        finally:
            service.Outbox = original_outbox  # type: ignore[misc]
        self.recovery_task = start_recovery(self, started_before=started)  # type: ignore[attr-defined]
        self.sweep_task = start_sweeps(  # type: ignore[attr-defined]
            self, every=float(os.environ.get("TWIML_TEST_SWEEP_SECONDS", "60")))
        if isinstance(self.driver, AsteriskDriver):
            watch_reconnects(self.driver)

    service.Adapter.start = start  # type: ignore[method-assign]


if __name__ == "__main__":
    _wire_recovery()
    sys.exit(cli.main(sys.argv[1:]))
