"""The demo's REST source: jafgen tweets behind a paginated, bearer-token JSON API.

Standard library only. ``GET /tweets?page=1&page_size=100[&since=<iso timestamp>]`` needs
``Authorization: Bearer <token>``; ``GET /health`` does not. Run it with
``python -m elt.demo.api --csv tweets.csv --port 8765 --token-file .elt/demo/api_token``
(the token is read from a file readable by its owner only, never from the command line).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import hmac
import json
import logging
import math
import signal
import stat
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from elt.demo.background import SERVICE_NAME, is_running, start_background, stop_background

__all__ = [
    "SERVICE_NAME",
    "TweetStore",
    "is_running",
    "main",
    "make_server",
    "start_background",
    "stop_background",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

log = logging.getLogger("elt.demo.api")


class BadRequest(ValueError):
    """A query parameter is invalid; the message is sent to the client."""


def _parse_time(text: str) -> datetime:
    """ISO timestamp → naive UTC (naive input is taken as UTC, like jafgen's timestamps)."""
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class TweetStore:
    """All tweets in memory, sorted by (tweeted_at, id) so pages are stable."""

    rows: list[dict[str, str]]
    times: list[datetime]

    @classmethod
    def from_csv(cls, path: Path) -> TweetStore:
        """Read the tweets CSV once (columns id, user_id, tweeted_at, content)."""
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        try:
            keyed = sorted(((_parse_time(row["tweeted_at"]), row["id"]), row) for row in rows)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{path}: every row needs an id and an ISO tweeted_at ({exc})"
            ) from exc
        return cls(rows=[row for _, row in keyed], times=[key[0] for key, _ in keyed])

    def page(self, page: int, page_size: int, since: datetime | None = None) -> dict[str, Any]:
        """One page of tweets (1-based) with the paging totals."""
        start = bisect.bisect_left(self.times, since) if since else 0
        total = len(self.rows) - start
        first = start + (page - 1) * page_size
        return {
            "data": self.rows[first : first + page_size],
            "page": page,
            "page_size": page_size,
            "total_pages": math.ceil(total / page_size),
            "total": total,
        }


def _int_param(query: dict[str, list[str]], name: str, default: int, maximum: int) -> int:
    raw = query.get(name, [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer (got {raw!r})") from None
    if not 1 <= value <= maximum:
        raise BadRequest(f"{name} must be between 1 and {maximum} (got {value})")
    return value


def _since_param(query: dict[str, list[str]]) -> datetime | None:
    if "since" not in query:
        return None
    # An unencoded '+' of a UTC offset arrives as a space after URL decoding.
    raw = query["since"][-1].strip().replace(" ", "+")
    try:
        return _parse_time(raw)
    except ValueError:
        raise BadRequest(f"since must be an ISO 8601 timestamp (got {raw!r})") from None


class TweetsServer(ThreadingHTTPServer):
    """An HTTP server holding the tweets and the expected token."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], tweets: TweetStore, token: str) -> None:
        super().__init__(address, TweetsHandler)
        self.tweets = tweets
        self.token = token


class TweetsHandler(BaseHTTPRequestHandler):
    """Routes: /health (open), /tweets (bearer token)."""

    server: TweetsServer
    server_version = "elt-demo-api/1"

    def do_GET(self) -> None:
        """Answer GET requests."""
        url = urlsplit(self.path)
        if url.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok", "service": SERVICE_NAME})
        elif not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "missing or invalid bearer token"})
        elif url.path.rstrip("/") == "/tweets":
            self._tweets(parse_qs(url.query))
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path: {url.path}"})

    def _authorized(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.token.encode()
        )

    def _tweets(self, query: dict[str, list[str]]) -> None:
        try:
            page = _int_param(query, "page", 1, sys.maxsize)
            page_size = _int_param(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            since = _since_param(query)
        except BadRequest as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._send(HTTPStatus.OK, self.server.tweets.page(page, page_size, since))

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="tweets"')
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Access log through ``logging`` (request lines carry no secrets)."""
        log.info("%s %s", self.address_string(), format % args)


def make_server(
    tweets_csv: Path, token: str, host: str = "127.0.0.1", port: int = 0
) -> TweetsServer:
    """A ready (not yet serving) ``ThreadingHTTPServer``; ``port=0`` picks a free port."""
    if not token:
        raise ValueError("the API token is empty")
    return TweetsServer((host, port), TweetStore.from_csv(tweets_csv), token)


def read_token_file(path: Path) -> str:
    """The token in ``path``, which must be readable by its owner only."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        token = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ValueError(f"the token file {path} is readable by others: run chmod 600 {path}")
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def main(argv: list[str] | None = None) -> int:
    """Serve the API until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m elt.demo.api", description=__doc__)
    parser.add_argument("--csv", type=Path, required=True, help="the tweets CSV file")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--token-file", type=Path, required=True, help="file holding the token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = make_server(args.csv, read_token_file(args.token_file), args.host, args.port)
    except (OSError, ValueError) as exc:
        log.error("cannot start the demo API: %s", exc)
        return 2
    # shutdown() waits for serve_forever() to return, so it must run on another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    log.info("serving %d tweets on http://%s:%s", len(server.tweets.rows), host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
