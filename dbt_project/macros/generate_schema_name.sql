{#-
    Schemas are set per folder in dbt_project.yml (`+schema`):
      - "target": exactly the target schema (the audit schema that publish copies to readers);
      - anything else: a suffix, e.g. "staging" → <target schema>_staging.
    A model, seed or snapshot without `+schema` fails the parse instead of landing silently in
    the target schema, where publish would copy it to readers.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set schema_name = custom_schema_name | trim if custom_schema_name is not none else none -%}
    {%- if schema_name is none or schema_name == '' -%}
        {%- if node.resource_type in ['model', 'seed', 'snapshot'] -%}
            {{ exceptions.raise_compiler_error(
                node.resource_type ~ " '" ~ node.name ~ "' (" ~ node.original_file_path ~ ")"
                ~ " has no schema: set +schema for its folder in dbt_project.yml"
                ~ " ('target' for the target schema itself, or a suffix such as 'staging')"
            ) }}
        {%- endif -%}
        {{ target.schema }}
    {%- elif schema_name == 'target' -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ schema_name }}
    {%- endif -%}
{%- endmacro %}
