"""``twiml-adapter``: ``serve [--config FILE.toml] [--debug]`` and ``check FILE|URL``.

``serve`` that cannot start prints one line naming the cause and the fix
(`adapter.startup_errors`) and exits with status 2; ``--debug`` prints the traceback first."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from adapter import __version__, log_context
from adapter.callbacks.cli import add_callbacks_command, run_callbacks_command
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
    serve.add_argument("--debug", action="store_true",
                       help="if it cannot start, print the traceback too")
    check = commands.add_parser("check", help="validate a TwiML document offline")
    check.add_argument("source", help="a file, '-' for standard input, or an http(s) URL")
    add_callbacks_command(commands)
    args = parser.parse_args(argv)
    if args.command == "callbacks":
        return run_callbacks_command(args)
    if args.command == "serve":
        return _serve(args.config, debug=args.debug)
    return _check(args.source)


def _serve(config_path: Path | None, *, debug: bool = False) -> int:
    from adapter.config import load_config
    from adapter.startup_errors import StartFailed, describe

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"twiml-adapter: config error: {exc}", file=sys.stderr)
        return 2
    log_context.configure(config.log_level, config.log_format)
    from adapter.service import Adapter

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(Adapter(config).run_forever())
    except StartFailed as failed:
        if debug:
            traceback.print_exception(failed.cause)
        print(f"twiml-adapter: cannot start: {describe(failed)}", file=sys.stderr)
        return 2
    return 0


def _check(source: str) -> int:
    from adapter.twiml import check_document, parse_document, unsupported_reached

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
    if not any(f.fatal for f in findings):  # valid: would a call reach a verb we do not run?
        findings += unsupported_reached(parse_document(body, content_type, url=url).verbs)
    for finding in findings:
        print(f"{source}: {finding}")
    if any(f.fatal for f in findings):
        return 1
    print(f"{source}: OK" + (f" ({len(findings)} warnings)" if findings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
