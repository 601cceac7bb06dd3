"""This adapter node's name in shared tables (outbox claims, call ownership).

Stable across restarts on purpose: a node that is killed and started again recognises its own
interrupted work (callbacks it was sending, calls it was running) and takes it back at once,
instead of waiting for a lease to run out. Two adapters on one host are told apart by their
data folder, which they never share.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

__all__ = ["node_identity"]


def node_identity(data_dir: Path, hostname: str | None = None) -> str:
    """``<host name>:<8 hex digits of the data folder's absolute path>``."""
    host = hostname if hostname is not None else socket.gethostname()
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:8]
    return f"{host}:{digest}"
