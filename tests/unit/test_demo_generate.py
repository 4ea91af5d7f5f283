"""The demo data generator: jafgen's seven entities, reproducible for a seed."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from elt.demo.generate import count_rows, generate

TINY = 0.02  # about a week of simulated days: a second or two

HEADERS = {
    "customers": ["id", "name"],
    "orders": ["id", "customer", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total"],
    "items": ["id", "order_id", "sku"],
    "products": ["sku", "name", "type", "price", "description"],
    "stores": ["id", "name", "opened_at", "tax_rate"],
    "supplies": ["id", "name", "cost", "perishable", "sku"],
    "tweets": ["id", "user_id", "tweeted_at", "content"],
}


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("tiny"), years=TINY, seed=7)


def test_writes_the_seven_entities_with_jafgen_headers(tiny: dict[str, Path]) -> None:
    assert set(tiny) == set(HEADERS)
    for name, path in tiny.items():
        assert path.name == f"{name}.csv"
        with path.open(newline="") as handle:
            assert next(csv.reader(handle)) == HEADERS[name], name
    counts = {name: count_rows(path) for name, path in tiny.items()}
    assert counts["stores"] == 6
    assert counts["products"] == 10
    assert counts["supplies"] == 65
    assert counts["orders"] > 0
    assert counts["items"] >= counts["orders"]


def test_same_seed_gives_identical_files(tiny: dict[str, Path], tmp_path: Path) -> None:
    again = generate(tmp_path, years=TINY, seed=7)
    for name, path in tiny.items():
        assert again[name].read_bytes() == path.read_bytes(), name


def test_another_seed_gives_other_data(tiny: dict[str, Path], tmp_path: Path) -> None:
    other = generate(tmp_path, years=TINY, seed=8)
    assert read(other["customers"])[0]["id"] != read(tiny["customers"])[0]["id"]


def test_rows_reference_each_other(tiny: dict[str, Path]) -> None:
    customers = {row["id"] for row in read(tiny["customers"])}
    stores = {row["id"] for row in read(tiny["stores"])}
    skus = {row["sku"] for row in read(tiny["products"])}
    orders = read(tiny["orders"])
    assert {row["customer"] for row in orders} <= customers
    assert {row["store_id"] for row in orders} <= stores
    assert {row["order_id"] for row in read(tiny["items"])} <= {row["id"] for row in orders}
    assert {row["sku"] for row in read(tiny["items"])} <= skus
    # money in integer cents, total = subtotal + tax
    first = orders[0]
    assert int(first["order_total"]) == int(first["subtotal"]) + int(first["tax_paid"])


def test_progress_is_reported_per_day_and_global_random_is_left_alone(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    random.seed(123)
    expected_next = random.Random(123).random()
    generate(
        tmp_path, years=1 / 365, seed=1, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1, 1)]
    assert random.random() == expected_next


def test_years_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="years must be greater than 0"):
        generate(tmp_path, years=0)
