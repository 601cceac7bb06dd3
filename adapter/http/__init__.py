"""The adapter's HTTP side: recording media, health and metrics (starlette)."""

from adapter.http.app import build_app

__all__ = ["build_app"]
