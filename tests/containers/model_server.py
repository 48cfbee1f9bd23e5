"""The test model server baked into localhost/berth-test/model:<version> (python3 stdlib only).

GET /healthz; POST /predict echoes {"echo": body, "version", "hostname"}; POST /alloc?mb=N
allocates N MiB more and holds it (OOM tests); GET /env?name=X and GET /file?path=P read an
environment variable or a (mounted) file. Listens on $PORT (default 8080).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("MODEL_VERSION", "unknown")
HELD: list[bytes] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body of a kept-alive
    # answer waits ~40 ms for the client's delayed ACK (Nagle).
    disable_nagle_algorithm = True

    def answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self.answer(200, {"status": "ok", "version": VERSION})
        elif path == "/env":
            name = self.query().get("name", "")
            self.answer(200, {"name": name, "value": os.environ.get(name)})
        elif path == "/file":
            try:
                with open(self.query().get("path", ""), encoding="utf-8") as f:
                    self.answer(200, {"content": f.read()})
            except OSError as exc:
                self.answer(404, {"error": str(exc)})
        else:
            self.answer(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path == "/predict":
            try:
                body: object = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self.answer(200, {"echo": body, "version": VERSION, "hostname": socket.gethostname()})
        elif path == "/alloc":
            mb = int(self.query().get("mb", "0"))
            HELD.append(b"\x01" * (mb << 20))  # written, so the pages are really charged
            self.answer(200, {"held_mb": sum(len(b) for b in HELD) >> 20})
        else:
            self.answer(404, {"error": f"no route {path}"})

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def main() -> None:
    port = int(os.environ.get("PORT") or 8080)
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"model {VERSION} listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
