"""Resource quantities: memory and storage sizes."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|[kKMGTP]B|B)?\s*$")
_FACTORS = {
    "": 1,
    "B": 1,
    "K": 10**3, "KB": 10**3, "kB": 10**3,
    "M": 10**6, "MB": 10**6,
    "G": 10**9, "GB": 10**9,
    "T": 10**12, "TB": 10**12,
    "P": 10**15, "PB": 10**15,
    "Ki": 2**10, "KiB": 2**10,
    "Mi": 2**20, "MiB": 2**20,
    "Gi": 2**30, "GiB": 2**30,
    "Ti": 2**40, "TiB": 2**40,
    "Pi": 2**50, "PiB": 2**50,
}

SIZE_RULE = "a size such as '256MiB', '8Gi', '512M' or a number of bytes"


def parse_size(text: str) -> int:
    """Parse a memory/storage size into bytes; raise ValueError naming the rule."""
    match = _SIZE.match(text)
    if match is None or (match.group(2) or "") not in _FACTORS:
        raise ValueError(f"{text!r} is not {SIZE_RULE}")
    value = float(match.group(1)) * _FACTORS[match.group(2) or ""]
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1 byte")
    return int(value)


def format_size(n_bytes: int) -> str:
    """Render bytes in the largest binary unit that divides evenly (256MiB, 8GiB)."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= factor and n_bytes % factor == 0:
            return f"{n_bytes // factor}{unit}"
    return f"{n_bytes}B"
