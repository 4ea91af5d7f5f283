"""Volume and freshness anomaly scoring (no services)."""

from __future__ import annotations

import pytest

from elt.config import Rule
from expectations.anomaly import evaluate, score
from expectations.plan import generated_suites

USUAL = [1000, 1040, 980, 1010, 995, 1025, 970, 1005]


def _rule(**kw) -> Rule:
    return Rule(type=kw.pop("type", "volume_anomaly"), table="raw_shop.orders", **kw)


@pytest.mark.parametrize("method", ["mad", "zscore"])
def test_a_load_with_a_tenth_of_the_usual_rows_is_an_anomaly(method: str) -> None:
    ok, observed, details = evaluate(_rule(method=method), [*USUAL, 100])
    assert not ok and observed == 100
    assert details["score"] < -3.5 and details["history"] == len(USUAL)
    assert details["expected_text"].startswith(f"|{method} score| ≤ 3.5 around")


@pytest.mark.parametrize("method", ["mad", "zscore"])
def test_a_normal_load_is_not(method: str) -> None:
    ok, observed, _ = evaluate(_rule(method=method), [*USUAL, 1012])
    assert ok and observed == 1012


def test_too_little_history_passes_and_says_so() -> None:
    ok, _, details = evaluate(_rule(min_history=5), [1000, 1000, 100])
    assert ok
    assert details["expected_text"] == "needs 5 earlier loads to judge (has 2)"


def test_a_steady_history_does_not_flag_a_one_row_change() -> None:
    assert abs(score([500.0] * 10, 501)) <= 1
    assert score([500.0] * 10, 50) < -10


def test_anomaly_rules_are_not_compiled_to_gx_and_need_a_raw_table() -> None:
    from elt.config import Pipeline

    pipe = Pipeline(
        name="p",
        sources=["shop"],
        quality={"rules": [{"type": "freshness_anomaly", "table": "raw_shop.orders"}]},
    )
    assert generated_suites(pipe) == []
    with pytest.raises(ValueError, match="watches the loads of a raw table"):
        Rule(type="volume_anomaly", table="orders")
