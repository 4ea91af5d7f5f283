"""What the marts must contain, recomputed in Python straight from jafgen's CSV rows.

Independent of dbt: a test builds the marts from the same rows (loaded with
``tests.helpers.raw_data``) and compares them with these figures. ``Entities`` are rows keyed
like ``raw_data.RAW_TABLES`` (values as the CSVs hold them: money in cents, text).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

Entities = dict[str, list[dict[str, str]]]

# raw tables whose key is not `id`
_KEYS = {"supplies": ("id", "sku"), "products": ("sku",)}


def dollars(cents: int) -> Decimal:
    """Cents as dollars with two decimals, as the marts hold money."""
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def merge_loads(*loads: Entities) -> Entities:
    """What the raw tables hold after these loads: a later row replaces an earlier one by key."""
    merged: dict[str, dict[tuple, dict[str, str]]] = defaultdict(dict)
    for load in loads:
        for entity, rows in load.items():
            key = _KEYS.get(entity, ("id",))
            for row in rows:
                merged[entity][tuple(row[column] for column in key)] = row
    return {entity: list(rows.values()) for entity, rows in merged.items()}


def mart_row_counts(data: Entities) -> dict[str, int]:
    """Rows each mart must have."""
    return {
        "customers": len(data["customers"]),
        "orders": len(data["orders"]),
        "order_items": len(data["items"]),
        "products": len(data["products"]),
        "locations": len(data["stores"]),
        "supplies": len(data["supplies"]),
        "customer_mentions_daily": len({t["tweeted_at"][:10] for t in data["tweets"]}),
    }


def customer_figures(data: Entities) -> dict[str, tuple[int, Decimal, str]]:
    """customer_id → (count_lifetime_orders, lifetime_spend, customer_type)."""
    counts: Counter[str] = Counter()
    spend: Counter[str] = Counter()
    for order in data["orders"]:
        counts[order["customer"]] += 1
        spend[order["customer"]] += int(order["order_total"])
    return {
        c["id"]: (
            counts[c["id"]],
            dollars(spend[c["id"]]),
            "returning" if counts[c["id"]] > 1 else "new",
        )
        for c in data["customers"]
    }


def order_figures(data: Entities) -> dict[str, tuple[Decimal, Decimal, int, int]]:
    """order_id → (order_total, order_cost, count_order_items, customer_order_number)."""
    supply_cents: Counter[str] = Counter()
    for supply in data["supplies"]:
        supply_cents[supply["sku"]] += int(supply["cost"])
    cost: Counter[str] = Counter()
    items: Counter[str] = Counter()
    for item in data["items"]:
        cost[item["order_id"]] += supply_cents[item["sku"]]
        items[item["order_id"]] += 1
    number: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for order in sorted(data["orders"], key=lambda o: (o["ordered_at"], o["id"])):
        seen[order["customer"]] += 1
        number[order["id"]] = seen[order["customer"]]
    return {
        o["id"]: (
            dollars(int(o["order_total"])),
            dollars(cost[o["id"]]),
            items[o["id"]],
            number[o["id"]],
        )
        for o in data["orders"]
    }
