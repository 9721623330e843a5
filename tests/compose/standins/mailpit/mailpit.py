#!/usr/bin/python3
"""TEST STAND-IN for Mailpit: an SMTP sink with a readiness check. Not Mailpit.

    /mailpit            SMTP on 0.0.0.0:1025, HTTP on 0.0.0.0:8025 (MP_SMTP_BIND_ADDR,
                        MP_UI_BIND_ADDR override them, as Mailpit's own variables)
    /mailpit readyz     exit 0 when the HTTP side answers /readyz (Mailpit's subcommand)

HTTP, a subset of Mailpit's API: GET /readyz, /livez, /api/v1/messages (newest first),
/api/v1/message/<ID>/headers, DELETE /api/v1/messages. Messages live in memory only.
"""

import json
import os
import signal
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_BIND = os.environ.get("MP_SMTP_BIND_ADDR", "0.0.0.0:1025")
UI_BIND = os.environ.get("MP_UI_BIND_ADDR", "0.0.0.0:8025")
MAX_MESSAGES = int(os.environ.get("MP_MAX_MESSAGES", "500"))

_lock = threading.Lock()
_messages: list[dict] = []


def split(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port)


def address(value: str | None) -> dict:
    return {"Name": "", "Address": (value or "").strip()}


class Sink:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        headers: dict[str, list[str]] = {}
        for key, value in parsed.items():
            headers.setdefault(key, []).append(str(value))
        record = {
            "ID": uuid.uuid4().hex,
            "MessageID": str(parsed.get("Message-ID", "")).strip("<>"),
            "From": address(envelope.mail_from),
            "To": [address(rcpt) for rcpt in envelope.rcpt_tos],
            "Subject": str(parsed.get("Subject", "")),
            "Created": datetime.now(UTC).isoformat(),
            "Size": len(raw),
            "Snippet": " ".join(text.split())[:250],
            "_headers": headers,
        }
        with _lock:
            _messages.append(record)
            del _messages[:-MAX_MESSAGES]
        print(f"stand-in mailpit: message {record['ID']} to {envelope.rcpt_tos}", flush=True)
        return "250 Message accepted"


class Api(BaseHTTPRequestHandler):
    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if payload != b"ok" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/readyz", "/livez"):
            return self._send(200, b"ok")
        with _lock:
            messages = list(reversed(_messages))
        if path == "/api/v1/messages":
            listed = [{k: v for k, v in m.items() if not k.startswith("_")} for m in messages]
            return self._send(
                200,
                {
                    "total": len(listed),
                    "unread": len(listed),
                    "count": len(listed),
                    "messages_count": len(listed),
                    "start": 0,
                    "tags": [],
                    "messages": listed,
                },
            )
        parts = path.split("/")
        if len(parts) == 6 and parts[1:4] == ["api", "v1", "message"] and parts[5] == "headers":
            for m in messages:
                if m["ID"] == parts[4]:
                    return self._send(200, m["_headers"])
        return self._send(404, {"error": "not found"})

    def do_DELETE(self):
        if self.path.split("?", 1)[0].rstrip("/") == "/api/v1/messages":
            with _lock:
                _messages.clear()
            return self._send(200, b"ok")
        return self._send(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        pass


def serve() -> None:
    from aiosmtpd.controller import Controller

    host, port = split(SMTP_BIND)
    smtp = Controller(Sink(), hostname=host, port=port)
    smtp.start()
    host, port = split(UI_BIND)
    http = ThreadingHTTPServer((host, port), Api)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=http.shutdown).start())
    print(f"stand-in mailpit: SMTP on {SMTP_BIND}, HTTP on {UI_BIND}", flush=True)
    try:
        http.serve_forever()
    finally:
        smtp.stop()


def readyz() -> int:
    _, port = split(UI_BIND)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if sys.argv[1:] == ["readyz"]:
        sys.exit(readyz())
    if sys.argv[1:]:
        sys.exit(f"the stand-in knows only `readyz`, not {sys.argv[1:]}")
    serve()
