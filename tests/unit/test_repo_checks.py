"""The pre-commit checks of elt/repo_checks.py: documented, key-tested models; no secrets."""

from __future__ import annotations

from pathlib import Path

from elt.repo_checks import main, model_problems, secret_problems


def _project(root: Path) -> Path:
    project = root / "proj"
    (project / "transform" / "core").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\nmodel-paths: [transform]\n")
    for name in ("good", "undocumented", "no_key", "no_description", "keyless"):
        (project / "transform" / "core" / f"{name}.sql").write_text("select 1 as id\n")
    (project / "transform" / "core" / "core.yml").write_text(
        """
models:
  - name: good
    description: Fine.
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: no_key
    description: Only one of the two key tests.
    columns:
      - name: id
        data_tests: [not_null, {accepted_values: {values: [1]}}]
  - name: no_description
    columns:
      - name: id
        tests: [unique, not_null]
  - name: keyless
    description: An event log without a key, saying so.
    config: {meta: {key_test: false}}
"""
    )
    return project


def test_model_problems_name_the_file_and_what_is_missing(tmp_path):
    problems = model_problems(_project(tmp_path))
    assert problems == [
        f"{tmp_path}/proj/transform/core/core.yml: model no_description has no description",
        f"{tmp_path}/proj/transform/core/core.yml: model no_key has no column with both unique"
        " and not_null tests (its key); or set meta: {key_test: false}",
        "proj/transform/core/undocumented.sql: model undocumented has no entry in a .yml file"
        " beside it",
    ]
    assert main(["models", str(tmp_path / "proj")]) == 1


def test_the_demo_and_fixture_projects_pass():
    root = Path(__file__).resolve().parents[2]
    assert model_problems(root / "dbt_project") == []
    assert model_problems(root / "tests" / "fixtures" / "acme_dbt") == []


def test_secret_problems_find_literals_and_spare_references_and_placeholders(tmp_path):
    file = tmp_path / "settings.yml"
    file.write_text(
        "a:\n"
        "  password: hunter2\n"  # 2: literal
        "  token: \"{{ env_var('TOKEN') }}\"\n"
        "  secret:\n"
        "    name: x\n"
        "url: postgresql://u:s3cr3t@h/db\n"  # 6: literal in a URL
        "doc: postgresql://user:password@host/db\n"
        "ref: postgresql://u:${PW}@h/db\n"
        "key: AKIA" + "ABCDEFGHIJKLMNOP\n"  # 9 (split: no key-shaped literal in the repo)
    )
    found = secret_problems([file])
    assert [line.split(":")[1] for line in found] == ["2", "6", "9"]
    assert all("hunter2" not in line and "s3cr3t" not in line for line in found)
