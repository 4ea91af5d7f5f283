"""``elt docs serve``: the built site over HTTP on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def make_server(root: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``root`` on 127.0.0.1 (port 0: any free port); not yet serving."""
    if not (root / "index.html").exists():
        raise FileNotFoundError(f"no site in {root}: run `elt docs build` first")
    handler = functools.partial(_QuietHandler, directory=str(root))
    return ThreadingHTTPServer((HOST, port), handler)


def url_of(server: ThreadingHTTPServer) -> str:
    """The server's home page URL."""
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    return f"http://{host}:{port}/"


def serve_in_thread(root: Path, port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``root`` from a daemon thread; stop with ``server.shutdown()``."""
    server = make_server(root, port)
    thread = threading.Thread(target=server.serve_forever, name="docs-site", daemon=True)
    thread.start()
    return server, thread
