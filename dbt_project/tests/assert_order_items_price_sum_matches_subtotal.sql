-- An order's subtotal equals the sum of its items' menu prices. A menu price change after the
-- order breaks this for old orders, so it only warns. Expected result: no rows.
{{ config(severity='warn') }}

with

orders as (

    select * from {{ ref('orders') }}

)

select
    order_id,
    subtotal,
    order_items_subtotal

from orders
where subtotal != order_items_subtotal
