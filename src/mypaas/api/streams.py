"""Streamed answers that end their producer when the client goes away (``logs -f``).

Starlette's StreamingResponse notices a client that left only when it next writes to it: a follower of a
container that prints nothing never writes, so its threads (the engine's log streams, the app follower)
ran on for as long as the manager did, one set per `logs -f` ever interrupted. :class:`Followed` listens
for the disconnect itself and sets the producer's ``stop`` at once; the producer then ends within its poll
interval and its threads with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class Followed(StreamingResponse):
    """A streamed answer whose producer stops (``stop`` set) once the client leaves or the answer ends."""

    def __init__(self, content: Iterable[bytes], *, stop: threading.Event, media_type: str) -> None:
        super().__init__(content, media_type=media_type)
        self._stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await self.listen_for_disconnect(receive)
                self._stop.set()  # the producer ends at its next poll: stream_response returns then

            group.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:  # the client went away while a line was being written
                pass
            finally:
                self._stop.set()
                group.cancel_scope.cancel()
