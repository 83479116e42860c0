"""Cancelling a request's task when its client leaves, so the primary's call stops with it.

In pure ASGI, learning that the client left takes a second task per request, blocked in
`receive()` until it returns `http.disconnect`: about 8 µs of the live process's CPU per request
(the task, its wake-up, its cancellation), some 3 % of the whole. shadowtap's own uvicorn
protocol (header_deadline.py) knows first when a connection is lost, so it puts a
`DisconnectWatch` in each request's scope, under
`scope["extensions"]["shadowtap.disconnect_watch"]["watch"]` (ASGI extensions are dicts), and
cancels the task itself. Under any other ASGI server, `watch_for_disconnect` falls back to
the task. Either way the forwarder sees one interface: `cancel()` ends the watch (the response is
complete, or about to be), and `client_gone` says whether a cancellation came from the client.

The watch also tells whether the request's body has all arrived (`body_received`), so that the
forwarder arms its body deadline only when reading the body could wait on the client.
"""

from __future__ import annotations

import asyncio

WATCH_EXTENSION = "shadowtap.disconnect_watch"


class DisconnectWatch:
    """One request's watch, made by the server protocol with the request's cycle (uvicorn's
    RequestResponseCycle); the forwarder starts it once the body is read."""

    __slots__ = ("_cycle", "_task", "client_gone")

    def __init__(self, cycle) -> None:
        self._cycle = cycle
        self._task: asyncio.Task | None = None
        self.client_gone = False

    @property
    def body_received(self) -> bool:
        """Whether the whole request body is already in hand, so that reading it cannot wait."""
        return not self._cycle.more_body

    def start(self, task: asyncio.Task) -> None:
        """Watch for the client leaving from now on, and cancel `task` when it does."""
        self._task = task
        if self._cycle.disconnected:
            self.client_left()
            return
        # As a watcher task's receive() does: read on, or a client whose pipelined request paused
        # reading could leave unnoticed.
        self._cycle.flow.resume_reading()

    def cancel(self) -> None:
        """Stop watching: the response is complete or being completed, and a client leaving now
        cancels nothing."""
        self._task = None

    def client_left(self) -> None:
        """Called by the protocol when the connection is lost before this request's response completed."""
        task, self._task = self._task, None
        if task is not None:
            self.client_gone = True
            task.cancel()


class _ReceiveWatch:
    """The same for any ASGI server: a task of its own waits for `http.disconnect`."""

    def __init__(self, receive, task: asyncio.Task) -> None:
        self.client_gone = False
        self._watcher = asyncio.ensure_future(self._watch(receive, task))

    async def _watch(self, receive, task: asyncio.Task) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                task.cancel()
                return

    def cancel(self) -> None:
        self._watcher.cancel()


def body_received(scope) -> bool:
    """True when shadowtap's protocol says the request's body has all arrived; False when it
    has not, or under another server (which cannot say)."""
    watch = _server_watch(scope)
    return watch is not None and watch.body_received


def watch_for_disconnect(scope, receive, task: asyncio.Task) -> DisconnectWatch | _ReceiveWatch:
    """Cancel `task` when the client leaves, until the returned watch's `cancel()`."""
    watch = _server_watch(scope)
    if watch is None:
        return _ReceiveWatch(receive, task)
    watch.start(task)
    return watch


def _server_watch(scope) -> DisconnectWatch | None:
    extensions = scope.get("extensions")
    extension = extensions.get(WATCH_EXTENSION) if extensions else None
    return extension["watch"] if extension else None
