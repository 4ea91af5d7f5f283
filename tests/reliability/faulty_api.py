"""A tweets API on 127.0.0.1 that injects faults on request: 429 with Retry-After, 500,
a slow answer, a cut connection, truncated JSON, a repeated page. Used by the fault tests
and the soak."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 10
SLOW_S = 2.5  # a slow answer takes this long: longer than the client's timeout
FAULTS = ("429", "500", "slow", "cut", "badjson", "repeat")


class FaultyApi(ThreadingHTTPServer):
    """The server: set ``faults`` before a run, read ``requests`` after it."""

    daemon_threads = True
    # page → faults to apply to its next requests, in order ("ok" once they run out)
    tweets: list[dict[str, Any]]
    faults: dict[int, list[str]]
    requests: list[tuple[int, str, float]]  # (page, what was answered, monotonic time)


class _FaultyHandler(BaseHTTPRequestHandler):
    server: FaultyApi

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        page = int(query.get("page", ["1"])[0])
        pending = self.server.faults.get(page, [])
        fault = pending.pop(0) if pending else "ok"
        self.server.requests.append((page, fault, time.monotonic()))
        served_page = page - 1 if fault == "repeat" else page
        body = json.dumps(
            {
                "data": self.server.tweets[(served_page - 1) * PAGE_SIZE : served_page * PAGE_SIZE],
                "page": page,
                "total_pages": -(-len(self.server.tweets) // PAGE_SIZE),
            }
        ).encode()
        if fault == "429":
            self._send(HTTPStatus.TOO_MANY_REQUESTS, b"{}", {"Retry-After": "1"})
        elif fault == "500":
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b'{"error": "boom"}')
        elif fault == "slow":
            time.sleep(SLOW_S)
            self._send(HTTPStatus.OK, body)
        elif fault == "cut":  # promise the whole body, send half, hang up
            self._send(HTTPStatus.OK, body[: len(body) // 2], length=len(body))
            self.close_connection = True
        elif fault == "badjson":  # a complete HTTP answer whose JSON is cut short
            self._send(HTTPStatus.OK, body[: len(body) // 2])
        else:
            self._send(HTTPStatus.OK, body)

    def _send(
        self, status: int, body: bytes, headers: dict | None = None, length: int | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        # the client may have given up on a slow answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def start(tweets: list[dict[str, Any]]) -> tuple[FaultyApi, threading.Thread]:
    """Serve ``tweets`` on 127.0.0.1 (a free port) in a daemon thread."""
    server = FaultyApi(("127.0.0.1", 0), _FaultyHandler)
    server.tweets, server.faults, server.requests = tweets, {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def stop(server: FaultyApi, thread: threading.Thread) -> None:
    """Stop the server and its thread."""
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def answers(server: FaultyApi) -> list[tuple[int, str]]:
    """(page, fault) of every request the server answered, in order."""
    return [(page, fault) for page, fault, _ in server.requests]
