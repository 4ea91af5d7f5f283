"""A JSON webhook on 127.0.0.1 that keeps what it receives: the target of alert tests.

Apprise's ``json://`` URLs post ``{"title": …, "message": …, "type": …}`` to it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Webhook:
    """A JSON webhook on 127.0.0.1 that keeps every body it receives, in order."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def apprise_url(self) -> str:
        """The Apprise URL that posts to this webhook."""
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def take(self) -> list[dict]:
        """Every body received since the last call (and forget them)."""
        bodies = list(self.received)
        del self.received[: len(bodies)]
        return bodies

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
