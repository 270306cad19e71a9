"""REST connections against real sockets: an idle keep-alive connection does not hold a
graceful shutdown, and a connection answered 408 for a body that never came is closed."""

from __future__ import annotations

import trio

from tests.gateway.conftest import running_gateway
from tests.gateway.helpers import until

# Far above what either check may take: before the fix, shutdown waited this long.
SHUTDOWN_TIMEOUT = 60.0
BOUND = 10.0


async def _read_until_eof(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    with trio.fail_after(BOUND):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def _read_response(stream: trio.SocketStream) -> bytes:
    """One complete response (head and its Content-Length body)."""
    data = b""
    with trio.fail_after(BOUND):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:"))
        while len(body) < length:
            body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


async def test_idle_keep_alive_connection_does_not_hold_shutdown(db_url: str) -> None:
    async with running_gateway(
            db_url, service={"shutdown_timeout_seconds": SHUTDOWN_TIMEOUT}) as gw:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.settings.gateway.rest_port)
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: tasker\r\n\r\n")
        head = await _read_response(stream)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"connection: close" not in head.lower()  # kept alive, now idle
        gw.runtime.request_shutdown()
        assert await _read_until_eof(stream) == b""  # closed at once, nothing more sent

        async def stopped() -> bool:
            return gw.runtime.state == "stopped"

        await until(stopped, seconds=BOUND)
        await stream.aclose()


async def test_connection_answered_408_for_a_missing_body_is_closed(db_url: str) -> None:
    async with running_gateway(db_url, gateway={"request_timeout_seconds": 0.5}) as gw:
        streams = []
        for _ in range(5):
            stream = await trio.open_tcp_stream("127.0.0.1", gw.settings.gateway.rest_port)
            await stream.send_all(b"POST /v1/tasks HTTP/1.1\r\nHost: tasker\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 100"
                                  b"\r\n\r\n{\"name\": ")
            streams.append(stream)
        for stream in streams:
            answer = await _read_until_eof(stream)  # the 408, then the server closes
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b'"code":"request_timeout"' in answer
            await stream.aclose()
        async with gw.http() as http:  # and the gateway still serves
            assert (await http.get("/health")).status_code == 200
