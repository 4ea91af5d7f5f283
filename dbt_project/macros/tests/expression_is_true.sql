{#-
    Fails for every row where the SQL expression is false or null (a null is not proof that the
    rule holds). On a column, the expression continues the column: `>= 0` tests `<column> >= 0`.
-#}
{% test expression_is_true(model, expression, column_name=none) %}
{%- set condition = (column_name ~ ' ' ~ expression) if column_name else expression %}

select *
from {{ model }}
where ({{ condition }}) is not true

{% endtest %}
