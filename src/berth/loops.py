"""Event loops for the parts `berth serve` runs side by side, each on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available, else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    """Runs one part on its own thread and event loop, so the others never delay it.

    `begin` runs first; `start()` returns once it has finished and re-raises its error.
    Then `run(stop)` runs until it returns; `stop()` sets `stop` and waits for the thread.
    """

    def __init__(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]], *,
                 begin: Callable[[], Awaitable[None]] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.new_event_loop()
        self._run, self._begin = run, begin
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def body() -> None:
            self._stop = asyncio.Event()
            try:
                if self._begin is not None:
                    await self._begin()
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._started.set()
            await self._run(self._stop)

        self.loop.run_until_complete(body())

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        self._started.wait(timeout)
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 30) -> None:
        if self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
