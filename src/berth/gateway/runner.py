"""Run a Gateway: on its own thread inside `berth serve`, or alone as `berth gateway`."""

from __future__ import annotations

import asyncio

from berth.gateway.service import Gateway
from berth.loops import LoopThread, new_loop


def gateway_thread(gateway: Gateway) -> LoopThread:
    async def serve(stop: asyncio.Event) -> None:
        await stop.wait()
        await gateway.stop()

    return LoopThread("berth-gateway", serve, begin=gateway.start, loop=new_loop())


async def serve_forever(gateway: Gateway) -> None:
    """`berth gateway`: run until cancelled (SIGINT/SIGTERM)."""
    await gateway.start()
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.stop()
