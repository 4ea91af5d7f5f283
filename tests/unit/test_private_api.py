"""Every private framework name the orchestrator adapters use still exists, with the
parameters we pass: an upgrade that changes one fails here, not in a production run."""

from __future__ import annotations

import pytest

from orchestration.private_api import PrivateName, problems


def test_every_private_airflow_and_cosmos_name_is_still_there():
    from orchestration.airflow import compat

    assert len(compat.PRIVATE_NAMES) >= 5
    assert problems(compat.PRIVATE_NAMES) == []


def test_every_private_prefect_and_prefect_dbt_name_is_still_there():
    from orchestration.prefect import compat

    assert len(compat.PRIVATE_NAMES) >= 3
    assert problems(compat.PRIVATE_NAMES) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (PrivateName("json", "no_such_function", None, "x"), "json:no_such_function is gone"),
        (PrivateName("json", "dumps", ("obj", "no_such_arg")), "no longer takes no_such_arg"),
        (PrivateName("no_such_module_here", "x", None), "no_such_module_here:x is gone"),
    ],
)
def test_a_renamed_or_reshaped_name_is_reported(name: PrivateName, expected: str):
    found = problems([name])
    assert len(found) == 1 and expected in found[0]


def test_no_adapter_module_imports_a_private_name_except_through_compat():
    """A private import outside compat.py would escape the check above."""
    import re

    from elt import paths

    private_import = re.compile(
        r"^\s*from\s+(airflow|cosmos|prefect|prefect_dbt)\S*\s+import\s+_\w"
    )
    private_module = re.compile(
        r"^\s*from\s+(airflow|cosmos|prefect|prefect_dbt)\S*\._\w+\s+import"
    )
    offenders = []
    for path in (paths.project_root() / "orchestration").rglob("*.py"):
        if path.name == "compat.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if private_import.match(line) or private_module.match(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
