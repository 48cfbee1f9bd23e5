"""A model server for tests: answers with the request line, headers and body it received."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> str:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts).decode()
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def _answer(self) -> None:
        body = self._read_body()
        if self.path.endswith("/eof"):  # HTTP/1.0 style: no length, the close ends the body
            self.close_connection = True
            self.wfile.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n")
            self.wfile.write(b"until the end " * 1000)
            return
        payload = json.dumps({"method": self.command, "path": self.path, "body": body,
                              "size": len(body),
                              "headers": {k.lower(): v for k, v in self.headers.items()}})
        data = payload.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("keep-alive", "timeout=5")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ["PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
