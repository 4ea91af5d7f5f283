"""A loopback REST API of nested events, a shape the demo does not have.

Each event has nested objects (``actor``, ``payload.repo``) and lists (``payload.tags``,
``payload.items``), so dlt makes child tables. Pages (``page_size`` rows, a query parameter
overrides it) are linked by the ``Link`` header; the first request of every page is answered
429 (``Retry-After: 0``); every request must carry the credential ``check`` accepts, else 401.
``POST /token`` hands out OAuth2 client-credentials tokens that expire after ``token_ttl`` s.

    api = EventsApi(events(12), check=lambda request: ...)
    api.url  # http://127.0.0.1:PORT/
    api.close()
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Check = Callable[["Request"], bool]


def events(count: int, *, version: int = 1) -> list[dict[str, Any]]:
    """``count`` nested events; ``version`` > 1 changes the odd ones (and their lists)."""
    rows = []
    for number in range(1, count + 1):
        changed = version > 1 and number % 2 == 1
        tags = ["new", "hot"] if changed else ["new"]
        rows.append(
            {
                "id": number,
                "kind": "edited" if changed else "created",
                "actor": {"id": 100 + number % 3, "login": f"user{number % 3}"},
                "payload": {
                    "repo": {"name": f"repo{number % 4}"},
                    "tags": tags,
                    "items": [{"sku": f"s{number}-{n}", "qty": n + version} for n in range(2)],
                },
                "created_at": f"2026-01-01T00:{number % 60:02d}:00+00:00",
            }
        )
    return rows


class Request:
    """What a check sees of a request: headers, query parameters and cookies."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.headers = handler.headers
        self.query = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        cookie = handler.headers.get("Cookie", "")
        pairs = (part.strip().split("=", 1) for part in cookie.split(";") if "=" in part)
        self.cookies = dict(pairs)


class EventsApi(ThreadingHTTPServer):
    """The server; ``served`` counts answered pages, ``tokens_issued`` the OAuth2 tokens."""

    daemon_threads = True

    def __init__(
        self,
        rows: list[dict[str, Any]],
        *,
        check: Check,
        page_size: int = 5,
        throttle: bool = True,
        token_ttl: float = 1.0,
        client: tuple[str, str] = ("", ""),
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rows = rows
        self.check = check
        self.page_size = page_size
        self.throttle = throttle
        self.token_ttl = token_ttl
        self.client = client
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.served = 0
        self.throttled: set[str] = set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL (with a trailing slash)."""
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def token_valid(self, token: str) -> bool:
        """True for a token this server issued that has not expired."""
        return self.tokens.get(token, 0) > time.monotonic()

    def issue_token(self) -> dict[str, Any]:
        """A new access token, valid for ``token_ttl`` seconds."""
        token = secrets.token_hex(8)
        self.tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return {"access_token": token, "expires_in": self.token_ttl, "token_type": "bearer"}

    def close(self) -> None:
        """Stop serving and release the port."""
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    server: EventsApi

    def do_POST(self) -> None:  # the OAuth2 token endpoint
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        given = (form.get("client_id", ""), form.get("client_secret", ""))
        if form.get("grant_type") != "client_credentials" or given != self.server.client:
            self._send(401, {"error": "invalid_client"})
            return
        self._send(200, self.server.issue_token())

    def do_GET(self) -> None:
        server = self.server
        if not server.check(Request(self)):
            self._send(401, {"error": "unauthorized"})
            return
        query = parse_qs(urlsplit(self.path).query)
        page = int(query.get("page", ["1"])[0])
        if server.throttle and self.path not in server.throttled:
            server.throttled.add(self.path)
            self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            return
        size = int(query.get("page_size", [server.page_size])[0])
        start = (page - 1) * size
        data = server.rows[start : start + size]
        headers = {}
        if start + size < len(server.rows):
            headers["Link"] = f'<{server.url}events?page={page + 1}&page_size={size}>; rel="next"'
        server.served += 1
        self._send(200, data, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on outcomes, not on access logs."""
