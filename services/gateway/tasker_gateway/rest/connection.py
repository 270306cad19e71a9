"""The ASGI HTTP connection of the REST app: quart-trio's, with the response sent shielded
from the request's own cancellation, so hypercorn can finish its per-connection bookkeeping.

Why: once the last body chunk is sent, hypercorn closes the stream, which hands the app an
`http.disconnect`; quart-trio then cancels the request's nursery while the send is still
inside hypercorn. Cancelled there, hypercorn (0.18) either loses the keep-alive idle timer
it was starting (an idle connection then never times out and holds a graceful shutdown for
its whole timeout) or skips closing a connection it must close (after a 408 with the body
unread, the socket stayed open forever). hypercorn already shields the socket write itself,
so shielding the send adds no new way to hang; quart's RESPONSE_TIMEOUT still bounds it.
"""

from __future__ import annotations

from typing import cast

import trio
from hypercorn.typing import ASGISendCallable
from quart.wrappers import Request, Response
from quart_trio.asgi import TrioASGIHTTPConnection


class ShieldedSendConnection(TrioASGIHTTPConnection):
    """See the module docstring."""

    async def handle_request(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, send: ASGISendCallable
    ) -> None:
        response = await self.app.handle_request(request)
        if isinstance(response, Response) and response.timeout != Ellipsis:
            timeout = cast(float | None, response.timeout)
        else:
            timeout = self.app.config["RESPONSE_TIMEOUT"]
        with trio.CancelScope(shield=True), trio.move_on_after(
                timeout if timeout is not None else float("inf")):
            await self._send_response(send, response)
        nursery.cancel_scope.cancel()
