"""Generate the jaffle-shop demo data with jafgen, reproducibly, into a folder of CSV files."""

from __future__ import annotations

import csv
import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

# The columns jafgen 0.4.14 writes, per entity (money in cents). Written even when an entity
# has no rows, so every file always has its header.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "name"),
    "orders": ("id", "customer", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total"),
    "items": ("id", "order_id", "sku"),
    "products": ("sku", "name", "type", "price", "description"),
    "stores": ("id", "name", "opened_at", "tax_rate"),
    "supplies": ("id", "name", "cost", "perishable", "sku"),
    "tweets": ("id", "user_id", "tweeted_at", "content"),
}

Progress = Callable[[int, int], None]


def generate(
    out_dir: Path,
    *,
    years: float = 1.0,
    seed: int = 42,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Simulate ``years`` of the jaffle shop and write one ``<entity>.csv`` per entity.

    The same ``seed`` and ``years`` give byte-identical files (ids included). ``progress`` is
    called as ``progress(days_done, days_total)`` after every simulated day. Returns the
    written file per entity name.
    """
    if years <= 0:
        raise ValueError(f"years must be greater than 0 (got {years})")
    days = max(1, round(365 * years))
    with _seeded(seed):
        entities = _simulate(days, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        name: _write_csv(out_dir / f"{name}.csv", name, rows) for name, rows in entities.items()
    }


def count_rows(csv_file: Path) -> int:
    """The number of data rows in a CSV file (its header not counted)."""
    with csv_file.open(newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def _simulate(days: int, progress: Progress | None) -> dict[str, list[dict[str, Any]]]:
    from jafgen.curves import Day
    from jafgen.simulation import Simulation
    from jafgen.stores.inventory import Inventory
    from jafgen.stores.stock import Stock

    sim = Simulation(1, "raw")
    sim.sim_days = days
    # jafgen's own run_simulation() draws a rich progress bar, which clashes with a caller's
    # live display; this is the same loop with a plain callback.
    for index in range(days):
        day = Day(index)
        for market in sim.markets:
            for order, tweet in market.sim_day(day):
                if order:
                    sim.orders.append(order)
                    sim.customers.setdefault(order.customer.customer_id, order.customer)
                if tweet:
                    sim.tweets.append(tweet)
        if progress:
            progress(index + 1, days)
    return {
        "customers": [customer.to_dict() for customer in sim.customers.values()],
        "orders": [order.to_dict() for order in sim.orders],
        "items": [item.to_dict() for order in sim.orders for item in order.items],
        "products": Inventory.to_dict(),
        "stores": [market.store.to_dict() for market in sim.markets],
        "supplies": Stock.to_dict(),
        "tweets": [tweet.to_dict() for tweet in sim.tweets],
    }


def _write_csv(path: Path, entity: str, rows: list[dict[str, Any]]) -> Path:
    """Write atomically: a half-written file never looks like finished data."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS[entity])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
    return path


# jafgen modules that draw ids from uuid.uuid4(), which no seed reaches.
_UUID_MODULES = (
    "jafgen.simulation",
    "jafgen.customers.customers",
    "jafgen.customers.order",
    "jafgen.customers.order_item",
    "jafgen.customers.tweet",
)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed every random source jafgen uses; its uuid4() calls get a seeded stand-in."""
    import importlib

    import numpy as np
    from faker import Faker
    from faker import generator as faker_generator

    # Import first: jafgen seeds Faker with a constant of its own when first imported.
    modules: list[ModuleType] = [importlib.import_module(name) for name in _UUID_MODULES]
    faker_random = faker_generator.random
    saved = (random.getstate(), np.random.get_state(), faker_random.getstate())
    random.seed(seed)
    np.random.seed(seed)
    Faker.seed(seed)
    id_random = random.Random(seed)  # noqa: S311 - demo ids, not secrets
    seeded_uuid = SimpleNamespace(
        uuid4=lambda: uuid.UUID(int=id_random.getrandbits(128), version=4)
    )
    try:
        for module in modules:
            module.uuid = seeded_uuid  # type: ignore[attr-defined]
        yield
    finally:
        for module in modules:
            module.uuid = uuid  # type: ignore[attr-defined]
        # leave the process's shared generators as they were
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        faker_random.setstate(saved[2])
