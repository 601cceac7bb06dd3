"""``twiml-adapter``: ``serve --config FILE.toml`` and ``check FILE|URL``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from adapter import __version__
from adapter.callbacks_cli import add_callbacks_command, run_callbacks_command
from adapter.errors import ConfigError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="twiml-adapter",
        description="Twilio TwiML voice support for Asterisk and FreeSWITCH.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the adapter")
    serve.add_argument("--config", type=Path, help="TOML file (environment variables override it)")
    check = commands.add_parser("check", help="validate a TwiML document offline")
    check.add_argument("source", help="a file, '-' for standard input, or an http(s) URL")
    add_callbacks_command(commands)
    args = parser.parse_args(argv)
    if args.command == "callbacks":
        return run_callbacks_command(args)
    if args.command == "serve":
        return _serve(args.config)
    return _check(args.source)


def _serve(config_path: Path | None) -> int:
    from adapter.config import load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"twiml-adapter: config error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from adapter.service import Adapter

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Adapter(config).run_forever())
    return 0


def _check(source: str) -> int:
    from adapter.twiml import check_document

    url: str | None = None
    content_type: str | None = "text/xml"
    try:
        if source.startswith(("http://", "https://")):
            url = source
            with urllib.request.urlopen(source, timeout=15) as response:  # noqa: S310
                content_type = response.headers.get("Content-Type")
                body = response.read(1024 * 1024 + 1)
        elif source == "-":
            body = sys.stdin.buffer.read()
        else:
            body = Path(source).read_bytes()
    except (OSError, urllib.error.URLError) as exc:
        print(f"{source}: 11200: cannot read the document ({exc})")
        return 1
    findings = check_document(body, content_type, url=url)
    for finding in findings:
        print(f"{source}: {finding}")
    if any(f.fatal for f in findings):
        return 1
    print(f"{source}: OK" + (f" ({len(findings)} warnings)" if findings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
