"""A stand-in for nlu/runtime/serve.py (standard library only), for supervisor and process tests.

It takes the same arguments and environment as the real server, checks the HS256 JWT like Rasa
does, answers ``GET /status`` with the model file and ``POST /model/parse`` with a fixed intent.
It loads in milliseconds instead of a minute, so killing and restarting it is cheap. Like Rasa, it
answers one request at a time; the text ``spin:N`` keeps it busy with N seconds of CPU work.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _authorised(header: str | None, secret: bytes) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    try:
        head, payload, signature = header.removeprefix("Bearer ").split(".")
    except ValueError:
        return False
    expected = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return hmac.compare_digest(expected, given)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    secret = os.environ.pop("NLU_JWT_SECRET", "").encode()
    # One request at a time, as Rasa's single worker: a long one holds back every other, /status too.
    working = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Rasa's server

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if not _authorised(self.headers.get("Authorization"), secret):
                self._answer(401, {"reason": "NotAuthenticated"})
            elif self.path == "/status":
                with working:
                    self._answer(200, {"model_file": args.model, "model_id": "fake"})
            else:
                self._answer(404, {})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not _authorised(self.headers.get("Authorization"), secret):
                self._answer(401, {"reason": "NotAuthenticated"})
            else:
                text = str(json.loads(body or b"{}").get("text", ""))
                with working:
                    if text.startswith("spin:"):  # "spin:N": N seconds of CPU work
                        deadline = time.monotonic() + float(text.removeprefix("spin:"))
                        while time.monotonic() < deadline:
                            pass
                    self._answer(200, {"intent": {"name": "greet", "confidence": 1.0}})

        def log_message(self, format: str, *values: object) -> None:
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
