"""GPU load from NVML (`nvidia-ml-py`): utilization and memory per GPU index."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pynvml


@dataclass(frozen=True)
class GpuUsage:
    utilization: float  # percent busy over NVML's last sample period
    memory_used: int  # bytes
    memory_total: int  # bytes


class NvmlMeter:
    """Reads NVML; on a machine without an NVIDIA driver every read says why instead.

    NVML is initialised once, on first use; a failed start is remembered (the driver does
    not appear while the server runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: bool | None = None
        self._why = ""

    def _start(self) -> bool:
        with self._lock:
            if self._started is None:
                try:
                    pynvml.nvmlInit()
                    self._started = True
                except pynvml.NVMLError as exc:
                    self._started = False
                    self._why = f"NVML is not available on this machine ({exc})"
            return self._started

    def usage(self) -> dict[int, GpuUsage] | str:
        """Per GPU index, or why nothing can be read."""
        if not self._start():
            return self._why
        out: dict[int, GpuUsage] = {}
        try:
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                out[index] = GpuUsage(float(rates.gpu), int(memory.used), int(memory.total))
        except pynvml.NVMLError as exc:
            return f"NVML read failed ({exc})"
        return out
