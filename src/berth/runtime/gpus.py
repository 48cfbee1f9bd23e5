"""The machine's GPUs: declared in settings, or asked of nvidia-smi."""

from __future__ import annotations

import shutil
import subprocess

from berth.domain.platform import Gpu

_TIMEOUT = 5.0


def parse_gpus(spec: str) -> tuple[Gpu, ...]:
    """Parse "index:model:memory_mib,..." (memory may be left out); "" means no GPUs."""
    gpus: list[Gpu] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        fields = [f.strip() for f in item.split(":")]
        if len(fields) < 2 or not fields[0].isdigit():
            raise ValueError(f"GPU {item!r}: expected 'index:model:memory_mib'")
        memory = 0
        if len(fields) >= 3 and fields[-1].isdigit():
            memory = int(fields.pop())
        model = ":".join(fields[1:])
        if not model:
            raise ValueError(f"GPU {item!r}: the model name is empty")
        gpus.append(Gpu(index=int(fields[0]), model=model, memory_mib=memory))
    indexes = [g.index for g in gpus]
    if len(set(indexes)) != len(indexes):
        raise ValueError(f"GPU indexes repeat in {spec!r}")
    return tuple(gpus)


def detect_gpus(override: str | None) -> tuple[Gpu, ...]:
    if override is not None:
        return parse_gpus(override)
    gpus: list[Gpu] = []
    for row in _query("index,name,memory.total,compute_cap"):
        if len(row) < 2 or not row[0].isdigit():
            continue
        memory = int(row[2]) if len(row) > 2 and row[2].isdigit() else 0
        cap = row[3] if len(row) > 3 and row[3][:1].isdigit() else ""
        gpus.append(Gpu(index=int(row[0]), model=row[1], memory_mib=memory,
                        compute_capability=cap))
    return tuple(gpus)


def gpu_usage() -> dict[int, tuple[float, int]]:
    """Utilization (percent) and memory used (MiB) per GPU index; {} without nvidia-smi."""
    usage: dict[int, tuple[float, int]] = {}
    for row in _query("index,utilization.gpu,memory.used"):
        try:
            usage[int(row[0])] = (float(row[1]), int(float(row[2])))
        except (IndexError, ValueError):
            continue
    return usage


def _query(fields: str) -> list[list[str]]:
    """Rows of `nvidia-smi --query-gpu=FIELDS`; [] on any failure."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        done = subprocess.run(
            [binary, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=_TIMEOUT, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [[cell.strip() for cell in line.split(",")]
            for line in done.stdout.splitlines() if line.strip()]
