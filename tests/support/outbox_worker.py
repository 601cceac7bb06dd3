"""One outbox node as its own process, for tests/callbacks/test_outbox.py: delivers what the
database holds until nothing is open any more, prints how many callbacks it delivered, and exits.
usage: outbox_worker.py DB_URL NODE_ID"""

from __future__ import annotations

import asyncio
import sys

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.store import Store
from adapter.metrics import Metrics

TOKEN = "outbox-auth-token"  # tests/callbacks/test_outbox.py's
ACCOUNT = "AC" + "c" * 32


async def main(url: str, node_id: str) -> None:
    store = await Store.open(url)
    metrics = Metrics()
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN) as client:
        box = Outbox(store, client, node_id=node_id, poll_interval=0.05, max_parallel=4,
                     backoff=(0.01,), metrics=metrics)
        await box.start()
        try:
            await box.wait_idle(60)
        finally:
            await box.stop()
    await store.close()
    print(metrics.counters[("callbacks", "delivered")])  # what this process delivered


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
