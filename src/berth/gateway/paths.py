"""Request targets the gateway refuses: those a normalising proxy would route elsewhere.

The gateway routes on the literal first two segments of the path (`/{project}/{deployment}/…`)
and sends the rest on as it came. A proxy, client or server that normalises a path first
(removes `.` and `..` segments, decodes percent-encoding, reads a backslash as a slash) could
take the same target to another deployment: `/a/x/../../b/y/predict` is `/b/y/predict` to it.
So the gateway answers 400 to a target with a `.` or `..` segment anywhere (as sent, or once,
twice or three times percent-decoded, with backslashes read as slashes, `..;` too), and to one
whose project or deployment segment holds a `%` or a backslash (no name has either).

An ordinary path costs three byte searches (`refusal`'s precheck) and nothing more.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote_to_bytes

DECODINGS: Final = 3  # percent-decodings tried (double encoding, and one more)
DOT_SEGMENT: Final = ("the path has a '.' or '..' segment (also percent-encoded, or after a "
                      "backslash): send the path normalised")
ENCODED_NAME: Final = ("the project or deployment in the path has a percent-encoded character "
                       "or a backslash")


def refusal(path: bytes) -> str | None:
    """Why the gateway refuses this path (the request target less its query), or None."""
    if b"%" not in path and b"/." not in path and b"\\" not in path:
        return None
    parts = path.split(b"/", 3)  # b"", project, deployment, rest
    for name in parts[1:3]:
        if b"%" in name or b"\\" in name:
            return ENCODED_NAME
    return DOT_SEGMENT if has_dot_segment(path) else None


def has_dot_segment(path: bytes) -> bool:
    """Whether any normalisation of `path` would find a `.` or `..` segment in it."""
    seen = path
    for _ in range(DECODINGS + 1):
        for segment in seen.replace(b"\\", b"/").split(b"/"):
            if segment.split(b";", 1)[0] in (b".", b".."):
                return True
        decoded = unquote_to_bytes(seen)
        if decoded == seen:
            return False
        seen = decoded
    return False
