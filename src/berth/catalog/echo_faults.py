"""catalog/echo's failure routes, for tests of retries:

    POST /status/{code}    answers `code` (200-599) with {"status": code}: a replica that
                           always fails (or always refuses)
    POST /flaky/{n}        503 for the first `n` requests with a given body, then the
                           /predict echo: a replica that fails transiently
"""

from __future__ import annotations

import json

STATUS, FLAKY = b"/status/", b"/flaky/"
MAX_REMEMBERED = 100_000  # bodies the flaky route counts tries of


class Faults:
    def __init__(self) -> None:
        self.tries: dict[bytes, int] = {}

    def answer(self, path: bytes, body: bytes) -> tuple[int, bytes] | None:
        """(status, body) for a failure route, None for other paths (or (400, …))."""
        if path.startswith(STATUS):
            code = path[len(STATUS):]
            if not code.isdigit() or not 200 <= int(code) <= 599:
                return 400, b'{"error": "/status/{code}: code must be 200-599"}'
            return int(code), json.dumps({"status": int(code)}).encode()
        if path.startswith(FLAKY):
            n = path[len(FLAKY):]
            if not n.isdigit() or len(n) > 6:
                return 400, b'{"error": "/flaky/{n}: n must be a number"}'
            tries = self.tries.get(body, 0) + 1
            if len(self.tries) < MAX_REMEMBERED or body in self.tries:
                self.tries[body] = tries
            if tries <= int(n):
                return 503, json.dumps({"error": f"flaky: try {tries} of {int(n) + 1}"}).encode()
            return None
        return None
