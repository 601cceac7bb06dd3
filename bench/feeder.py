"""The loopback PBX side of the event-path benchmark, as its own process (it never shares the
measured process's core): ``python -m bench.feeder MODE …``; prints its port (server modes) and
writes its stream as fast as the client reads it.

- ``ami EVENTS``: an AMI server: banner, every action answered ``Response: Success`` (Login
  also with FullyBooted), and on ``Action: BenchStart`` the stream (`streams.ami_stream`);
- ``esl-in EVENTS``: an inbound event socket: ``auth/request``, ``+OK accepted``, and after the
  ``event plain …`` reply the recording events of EVENTS / 10 recordings over 20 calls;
- ``esl-out PORT CALLS RECORDINGS SPOOL``: FreeSWITCH's outbound sockets: CALLS connections to
  the adapter's listener, each answering ``connect`` with channel data and each setup command
  with ``+OK``, then sending its call's recording events.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench import streams

CALLS_IN = 20


async def _ami(events: int) -> None:
    stream = streams.ami_stream(events)
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                frame = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in
                               frame.decode().strip().split("\r\n") if ": " in line)
                action = headers.get("Action", "").lower()
                reply = f"Response: Success\r\nActionID: {headers.get('ActionID', '')}\r\n"
                if action == "login":
                    reply += ("Message: Authentication accepted\r\n\r\n"
                              "Event: FullyBooted\r\nPrivilege: system,all\r\n"
                              "Status: Fully Booted\r\n")
                writer.write(reply.encode() + b"\r\n")
                if action == "benchstart":
                    writer.write(stream)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()


def _esl_in_stream(events: int, spool: Path) -> bytes:
    recordings = max(1, events // streams.ESL_EVENTS_PER_RECORDING // CALLS_IN)
    per_call = [streams.esl_call_events(c, recordings, spool) for c in range(CALLS_IN)]
    out = [frame for step in zip(*per_call, strict=True) for frame in step]
    return b"".join(out) + streams.esl_end_event()


async def _esl_in(events: int) -> None:
    stream = _esl_in_stream(events, Path("/var/spool/twiml-bench"))
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        try:
            while True:
                command = (await reader.readuntil(b"\n\n")).decode().strip()
                if command.startswith("auth "):
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                elif command.startswith("event plain"):
                    writer.write(b"Content-Type: command/reply\n"
                                 b"Reply-Text: +OK event listener enabled plain\n\n")
                    writer.write(stream)
                else:
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()


async def _esl_out(port: int, calls: int, recordings: int, spool: Path) -> None:
    frames = [(streams.connect_reply(c), b"".join(streams.esl_call_events(c, recordings, spool)))
              for c in range(calls)]

    async def one(reply: bytes, events: bytes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await reader.readuntil(b"\n\n")  # connect
            writer.write(reply)
            # The set-up, then each recording's ``api uuid_record`` (on the call's socket, as
            # on FreeSWITCH), until the adapter's last: "bench start" (its recordings are on).
            command = ""
            while command != "bench start":
                command = (await reader.readuntil(b"\n\n")).decode().strip()
                if command.startswith("api "):
                    writer.write(b"Content-Type: api/response\nContent-Length: 12\n\n"
                                 b"+OK Success\n")
                else:
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
            writer.write(events)
            await writer.drain()
            while await reader.read(65536):  # until the adapter side closes
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    print("ready", flush=True)
    await asyncio.gather(*(one(r, e) for r, e in frames))


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "ami":
        asyncio.run(_ami(int(argv[1])))
    elif mode == "esl-in":
        asyncio.run(_esl_in(int(argv[1])))
    elif mode == "esl-out":
        asyncio.run(_esl_out(int(argv[1]), int(argv[2]), int(argv[3]), Path(argv[4])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
