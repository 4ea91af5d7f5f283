-- An order's total is its subtotal plus tax, to the cent. Expected result: no rows.
with

orders as (

    select * from {{ ref('orders') }}

)

select
    order_id,
    subtotal,
    tax_paid,
    order_total

from orders
where order_total != subtotal + tax_paid
