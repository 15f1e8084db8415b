"""A minimal stand-in for API Gateway's Management API on loopback: `POST /@connections/{id}` answers
200 with an empty body (keep-alive, as API Gateway does), after `--delay-ms` if given; `GET /stats`
answers `{"posts": n}`. Used where pushes must be answered but no socket should receive them (the
processor CPU replay), and to show the senders against a server with service latency.

    python -m bench.standin --port 0 [--delay-ms 20]     # prints "port N" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid


class Standin:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.posts = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
                }
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                if method == "GET" and path == "/stats":
                    body = json.dumps({"posts": self.posts}).encode()
                elif method == "POST" and "/@connections/" in path:
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    self.posts += 1
                    body = b""
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"x-amzn-RequestId: {uuid.uuid4()}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def main(port: int, delay_ms: float) -> None:
    standin = Standin(delay_ms / 1000)
    server = await asyncio.start_server(standin.serve, "127.0.0.1", port, backlog=2048)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay_ms))
