"""The demo tweets API: pagination, bearer auth, the since filter, served over real HTTP."""

from __future__ import annotations

import csv
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from elt.demo.api import main, make_server, read_token_file

TOKEN = "test-token-123"

# Seven tweets, deliberately out of order, two sharing a timestamp (ordered by id then).
TWEETS = [
    ("t5", "u1", "2018-09-03T10:00:00", "fine"),
    ("t1", "u2", "2018-09-01T08:00:00.250000", "great"),
    ("t3", "u1", "2018-09-02T09:30:00", "meh"),
    ("t2", "u3", "2018-09-02T09:30:00", "good, really"),
    ("t7", "u2", "2018-09-05T18:45:10", "awful"),
    ("t4", "u4", "2018-09-02T23:59:59", 'a "quoted" word'),
    ("t6", "u3", "2018-09-04T07:00:00", "okay"),
]
ORDERED_IDS = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]


@pytest.fixture(scope="module")
def api_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    path = tmp_path_factory.mktemp("api") / "tweets.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "user_id", "tweeted_at", "content"])
        writer.writerows(TWEETS)
    server = make_server(path, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def get(
    port: int, path: str, token: str | None = TOKEN, scheme: str = "Bearer"
) -> tuple[int, dict]:
    """GET ``path`` from the API; returns the status and the decoded JSON body."""
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_pages_hold_every_tweet_exactly_once_in_stable_order(api_port: int) -> None:
    seen: list[str] = []
    for page in range(1, 4):
        status, body = get(api_port, f"/tweets?page={page}&page_size=3")
        assert status == 200
        assert (body["page"], body["page_size"], body["total_pages"], body["total"]) == (
            page,
            3,
            3,
            7,
        )
        seen += [tweet["id"] for tweet in body["data"]]
    assert seen == ORDERED_IDS
    status, body = get(api_port, "/tweets?page=2&page_size=3")
    assert [tweet["id"] for tweet in body["data"]] == ["t4", "t5", "t6"]


def test_rows_keep_every_column(api_port: int) -> None:
    _, body = get(api_port, "/tweets?page_size=1")
    assert body["data"] == [
        {
            "id": "t1",
            "user_id": "u2",
            "tweeted_at": "2018-09-01T08:00:00.250000",
            "content": "great",
        }
    ]


def test_page_past_the_end_is_empty(api_port: int) -> None:
    status, body = get(api_port, "/tweets?page=4&page_size=3")
    assert status == 200
    assert body["data"] == []
    assert (body["page"], body["total_pages"], body["total"]) == (4, 3, 7)


def test_defaults_are_page_one_of_a_hundred(api_port: int) -> None:
    _, body = get(api_port, "/tweets")
    assert (body["page"], body["page_size"], body["total_pages"]) == (1, 100, 1)
    assert len(body["data"]) == 7


@pytest.mark.parametrize(
    ("token", "scheme"), [(None, "Bearer"), ("wrong", "Bearer"), (TOKEN, "Basic"), ("", "Bearer")]
)
def test_needs_the_bearer_token(api_port: int, token: str | None, scheme: str) -> None:
    status, body = get(api_port, "/tweets", token=token, scheme=scheme)
    assert status == 401
    assert body == {"error": "missing or invalid bearer token"}


def test_health_needs_no_token_and_unknown_paths_are_404(api_port: int) -> None:
    assert get(api_port, "/health", token=None) == (
        200,
        {"status": "ok", "service": "elt-demo-tweets"},
    )
    status, body = get(api_port, "/users")
    assert status == 404
    assert "/users" in body["error"]
    assert get(api_port, "/users", token=None)[0] == 401


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2018-09-02T09:30:00", ["t2", "t3", "t4", "t5", "t6", "t7"]),  # inclusive
        ("2018-09-02T09:30:01", ["t4", "t5", "t6", "t7"]),
        ("2018-09-04T09:00:00+02:00", ["t6", "t7"]),  # 07:00 UTC
        ("2018-09-05T18:45:10Z", ["t7"]),
        ("2030-01-01T00:00:00", []),
    ],
)
def test_since_keeps_tweets_at_or_after_the_timestamp(
    api_port: int, since: str, expected: list[str]
) -> None:
    _, body = get(api_port, f"/tweets?page_size=2&since={quote(since)}")
    assert body["total"] == len(expected)
    assert body["total_pages"] == -(-len(expected) // 2)
    ids: list[str] = []
    for page in range(1, body["total_pages"] + 1):
        _, body = get(api_port, f"/tweets?page={page}&page_size=2&since={quote(since)}")
        ids += [tweet["id"] for tweet in body["data"]]
    assert ids == expected


def test_unencoded_plus_in_since_still_means_an_offset(api_port: int) -> None:
    _, body = get(api_port, "/tweets?since=2018-09-04T09:00:00+02:00")
    assert [tweet["id"] for tweet in body["data"]] == ["t6", "t7"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page_size=0", "page_size must be between 1 and 1000 (got 0)"),
        ("page_size=1001", "page_size must be between 1 and 1000 (got 1001)"),
        ("page=0", "page must be between 1"),
        ("page=two", "page must be an integer (got 'two')"),
        ("since=yesterday", "since must be an ISO 8601 timestamp (got 'yesterday')"),
    ],
)
def test_bad_parameters_are_400_with_the_reason(api_port: int, query: str, message: str) -> None:
    status, body = get(api_port, f"/tweets?{query}")
    assert status == 400
    assert body["error"].startswith(message)


def test_token_file_must_be_private(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    token_file.chmod(0o644)
    with pytest.raises(ValueError, match=r"readable by others: run chmod 600"):
        read_token_file(token_file)
    token_file.chmod(0o600)
    assert read_token_file(token_file) == TOKEN


def test_main_refuses_a_shared_token_file_without_printing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-value")
    token_file.chmod(0o640)
    tweets = tmp_path / "tweets.csv"
    tweets.write_text("id,user_id,tweeted_at,content\n")
    code = main(["--csv", str(tweets), "--port", "0", "--token-file", str(token_file)])
    assert code == 2
    assert "chmod 600" in caplog.text
    assert "s3cret-value" not in caplog.text
