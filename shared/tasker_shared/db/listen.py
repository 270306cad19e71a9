"""Trio-native LISTEN/NOTIFY: one autocommit connection, `wait_readable` + `notifies(timeout=0)`.

Each notification is handed to a plain callback in the listener's own task as soon as it is
read (no channel and no task in between: a wake-up is one task switch shorter; the callbacks
only note what woke them). The listener reconnects after a dropped connection and then
delivers a `RECONNECTED` notification, so consumers know to poll for anything sent while it
was away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
import structlog
import trio
from psycopg import sql

log = structlog.get_logger("tasker.listen")

RECONNECTED = "__reconnected__"
DELIVER_BEFORE_YIELD = 256  # notifications handed over between two checkpoints


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    channel: str
    payload: str


Deliver = Callable[[Notification], None]


class NotificationListener:
    """Listens on `channels` and hands every notification to `deliver` (see `run`)."""

    def __init__(
        self, url: str, channels: Sequence[str], *, reconnect_delay_seconds: float = 1.0
    ) -> None:
        self.url = url
        self.channels = tuple(dict.fromkeys(channels))
        self.reconnect_delay_seconds = reconnect_delay_seconds
        self.received = 0
        self.reconnects = 0
        self.connected = False

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.url, autocommit=True, application_name="tasker-listener")
        for channel in self.channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    async def run(
        self,
        deliver: Deliver,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled, calling `deliver(notification)` for each (in this task:
        it must not block)."""
        started = False
        while True:
            try:
                conn = await trio.to_thread.run_sync(self._connect)
            except psycopg.Error as exc:
                log.warning("listener_connect_failed", error=str(exc))
                await trio.sleep(self.reconnect_delay_seconds)
                continue
            self.connected = True
            connected_at = trio.current_time()
            try:
                if not started:
                    started = True
                    task_status.started()
                else:
                    self.reconnects += 1
                    deliver(Notification(channel=RECONNECTED, payload=""))
                await self._pump(conn, deliver)
            except psycopg.Error as exc:
                log.warning("listener_connection_lost", error=str(exc))
            finally:
                self.connected = False
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(conn.close)
            # A connection that served a while was lost (a killed backend, a restart): try
            # again at once, since every notification until then is missed. One lost soon
            # after it was made waits the delay: no reconnect loop against a failing server.
            if trio.current_time() - connected_at < self.reconnect_delay_seconds:
                await trio.sleep(self.reconnect_delay_seconds)

    async def _pump(self, conn: psycopg.Connection[tuple[object, ...]], deliver: Deliver) -> None:
        while True:
            await trio.lowlevel.wait_readable(conn.fileno())
            batch = [
                Notification(channel=n.channel, payload=n.payload)
                for n in conn.notifies(timeout=0)
            ]
            if not batch and conn.closed:
                raise psycopg.OperationalError("listener connection closed")
            if not batch:
                # Readable without a notification: consume the input to detect a dead socket.
                conn.pgconn.consume_input()
                if conn.pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("listener connection lost")
            for n, item in enumerate(batch, 1):
                self.received += 1
                deliver(item)
                if n % DELIVER_BEFORE_YIELD == 0:  # a burst does not hold the event loop
                    await trio.lowlevel.checkpoint()
