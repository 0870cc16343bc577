"""common.http_protocol: one socket write per response, nothing reordered, lost or delayed past the turn.

The transport proxy is checked against a recording fake transport; the protocol is then served by
uvicorn with the project's own settings (`uvicorn_config`) on a real port and exercised over
keep-alive connections: small JSON answers, a streamed answer whose chunks span several loop
turns, a large body, and concurrent clients.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn

from common.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from common.serve import uvicorn_config
from common.testing import wait_until


class RecordingTransport:
    """The asyncio.Transport calls the proxy makes, recorded."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 5

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 9)}.get(name, default)


async def test_writes_of_one_turn_leave_as_one_buffer_in_order() -> None:
    real = RecordingTransport()
    proxy = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    proxy.write(b"HTTP/1.1 200 OK\r\n\r\n")
    proxy.write(memoryview(b'{"a": 1}'))
    proxy.write(b"")
    assert real.writes == [] and proxy.get_write_buffer_size() == 5 + 27
    await asyncio.sleep(0)
    assert real.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"a": 1}']
    proxy.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]
    assert proxy.get_extra_info("peername") == ("127.0.0.1", 9)  # everything else is the real transport's


async def test_close_and_eof_flush_first_abort_drops() -> None:
    loop = asyncio.get_running_loop()
    real = RecordingTransport()
    proxy = CoalescingTransport(real, loop)  # type: ignore[arg-type]
    proxy.write(b"last words")
    proxy.close()
    assert real.writes == [b"last words"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing
    assert real.writes == [b"last words"]

    real = RecordingTransport()
    proxy = CoalescingTransport(real, loop)  # type: ignore[arg-type]
    proxy.write(b"body")
    proxy.write_eof()
    assert real.writes == [b"body"] and real.eof

    real = RecordingTransport()
    proxy = CoalescingTransport(real, loop)  # type: ignore[arg-type]
    proxy.write(b"never sent")
    proxy.abort()
    await asyncio.sleep(0)
    assert real.writes == [] and real.aborted


async def test_a_transport_closed_by_the_peer_gets_no_write() -> None:
    real = RecordingTransport()
    proxy = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    proxy.write(b"late")
    real.aborted = True  # connection lost before the end of the turn
    await asyncio.sleep(0)
    assert real.writes == []


BIG = b"x" * 1_000_000


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one,", b"two,", b"three"):
            await asyncio.sleep(0.001)  # each chunk in a later loop turn
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = BIG if path == "/big" else b'{"path": "' + path.encode() + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_uvicorn_serves_every_kind_of_answer_through_the_protocol() -> None:
    config = uvicorn_config(app, "127.0.0.1", 0)
    assert config.http is CoalescingHttpToolsProtocol
    config.log_level = "warning"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started, timeout=10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(5):  # one keep-alive connection, answer after answer
                r = await client.get(f"/item/{i}")
                assert r.status_code == 200 and r.json() == {"path": f"/item/{i}"}
            streamed = await client.get("/stream")
            assert streamed.text == "one,two,three"
            big = await client.get("/big")
            assert big.content == BIG
            answers = await asyncio.gather(*(client.get(f"/c/{i}") for i in range(40)))
            assert [a.json()["path"] for a in answers] == [f"/c/{i}" for i in range(40)]
    finally:
        server.should_exit = True
        await task
        sock.close()
