"""What `elt scaffold dbt` writes for a raw table, in the project's SQL style."""

from __future__ import annotations

from elt.scaffold import RawTable, column_alias, model_sql, model_yml, sources_yml

EVENTS = RawTable(
    "events",
    [("id", "bigint"), ("amount", "numeric(12,2)"), ("_dlt_load_id", "character varying")],
    primary_key=["id"],
)
TAGS = RawTable(
    "events__payload__tags",
    [("value", "character varying"), ("order", "bigint"), ("_dlt_parent_id", "text")],
    parent="events",
)


def test_a_root_table_is_renamed_and_cast_with_its_load_time():
    assert model_sql("evt", EVENTS) == (
        "with\n\nsource as (\n\n    select * from {{ source('evt', 'events') }}\n\n),\n\n"
        "final as (\n\n    select\n"
        "        cast(id as text) as id,\n"
        "        cast(amount as numeric(12, 2)) as amount,\n\n"
        "        cast(_dlt_load_id as text) as load_id,\n"
        "        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at\n\n"
        "    from source\n\n)\n\nselect * from final\n"
    )
    assert (
        '      - name: id\n        description: "`id` of the raw table."\n'
        "        data_tests:\n          - unique\n          - not_null\n"
        in model_yml("evt", EVENTS)
    )


def test_keywords_are_quoted_or_renamed_and_child_rows_link_to_their_parent():
    assert column_alias("events__payload__tags", "value") == "tag_value"
    assert column_alias("events", "kind") == "kind"
    sql = model_sql("evt", TAGS)
    assert 'cast("order" as bigint) as tag_order,' in sql
    assert "loaded_at" not in sql  # child rows carry no load id
    assert "to: ref('stg_evt__events')\n                field: dlt_id" in model_yml("evt", TAGS)


def test_sources_yml_has_freshness_on_the_load_time_but_not_for_child_tables():
    text = sources_yml("evt", [EVENTS, TAGS])
    assert 'loaded_at_field: "to_timestamp(_dlt_load_id::numeric)"' in text
    assert "      - name: events__payload__tags\n        config:\n          freshness: null" in text
    assert "      - name: _dlt_loads" in text
