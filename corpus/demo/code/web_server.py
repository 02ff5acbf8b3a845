"""A tiny JSON HTTP service built on the standard library (no framework)."""
from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOTES: dict[int, str] = {}


class NotesHandler(BaseHTTPRequestHandler):
    server_version = "NotesServer/0.1"

    def _send(self, status: HTTPStatus, payload: object) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        if self.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif self.path == "/notes":
            self._send(HTTPStatus.OK, [{"id": k, "text": v} for k, v in sorted(NOTES.items())])
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route for {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/notes":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
            text = str(data["text"]).strip()
        except (ValueError, KeyError):
            self._send(HTTPStatus.BAD_REQUEST, {"error": "expected JSON body with a 'text' field"})
            return
        note_id = max(NOTES, default=0) + 1
        NOTES[note_id] = text
        self._send(HTTPStatus.CREATED, {"id": note_id})

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"[{self.address_string()}] {fmt % args}")


if __name__ == "__main__":
    with ThreadingHTTPServer(("127.0.0.1", 8080), NotesHandler) as httpd:
        print("listening on http://127.0.0.1:8080")
        httpd.serve_forever()
