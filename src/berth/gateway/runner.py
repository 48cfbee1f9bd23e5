"""Run a Gateway on its own thread and event loop (uvloop when available)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from berth.gateway.service import Gateway


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class GatewayThread:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = new_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="berth-gateway", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def body() -> None:
            self._stop = asyncio.Event()
            try:
                await self.gateway.start()
            except BaseException as exc:
                self._error = exc
                self._started.set()
                return
            self._started.set()
            await self._stop.wait()
            await self.gateway.stop()

        self.loop.run_until_complete(body())

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


async def serve_forever(gateway: Gateway) -> None:
    """`berth gateway`: run until cancelled (SIGINT/SIGTERM)."""
    await gateway.start()
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.stop()
