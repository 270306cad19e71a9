"""A TCP proxy in front of the test PostgreSQL server that a test can take down (every
connection through it dropped, new ones refused, as when the server stops or crashes) and
bring back on the same port, without touching the shared server."""

from __future__ import annotations

import threading

import trio
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class TcpProxy:
    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        self.target_host = str(params.get("host") or "127.0.0.1")
        self.target_port = int(params.get("port") or 5432)
        self.url = url
        self.port = 0
        self._scope: trio.CancelScope | None = None

    @property
    def proxied_url(self) -> str:
        """`url`, connecting through the proxy."""
        return make_conninfo(self.url, host="127.0.0.1", port=str(self.port))

    async def up(self, nursery: trio.Nursery) -> None:
        """Accept connections (on the same port as before, if it ran before)."""
        await nursery.start(self._serve)

    def down(self) -> None:
        """Drop every proxied connection and refuse new ones."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                     ) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as handlers:
                    task_status.started()
                    await trio.serve_listeners(self._handle, listeners,
                                               handler_nursery=handlers)
        finally:
            for listener in listeners:
                listener.socket.close()  # refuse new connections at once

    async def _connect(self) -> trio.SocketStream:
        """To the server: over TCP, or its Unix socket when the URL's host is a directory
        (the embedded server listens on a socket only)."""
        if self.target_host.startswith("/"):
            return await trio.open_unix_socket(f"{self.target_host}/.s.PGSQL.{self.target_port}")
        return await trio.open_tcp_stream(self.target_host, self.target_port)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            try:
                server = await self._connect()
            except OSError:
                return
            async with server, trio.open_nursery() as pumps:
                pumps.start_soon(_pump, client, server, pumps.cancel_scope)
                pumps.start_soon(_pump, server, client, pumps.cancel_scope)


async def _pump(source: trio.SocketStream, sink: trio.SocketStream,
                scope: trio.CancelScope) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()  # one side closed: close both


class ThreadedProxy:
    """A `TcpProxy` run by its own Trio loop in a thread, for tests that are not async (real
    service processes connect through it)."""

    def __init__(self, url: str) -> None:
        self.proxy = TcpProxy(url)
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._nursery is not None:
            trio.from_thread.run_sync(self._nursery.cancel_scope.cancel, trio_token=self._token)
        self._thread.join(10)

    @property
    def proxied_url(self) -> str:
        return self.proxy.proxied_url

    def down(self) -> None:
        trio.from_thread.run_sync(self.proxy.down, trio_token=self._token)

    def up(self) -> None:
        assert self._nursery is not None
        nursery = self._nursery
        trio.from_thread.run(self.proxy.up, nursery, trio_token=self._token)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.proxy.up(nursery)
            self._started.set()
            await trio.sleep_forever()
