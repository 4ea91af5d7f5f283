-- A customer's lifetime spend is the sum of their order totals, and their order count the
-- number of their orders. Expected result: no rows.
with

customers as (

    select * from {{ ref('customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

order_totals as (

    select
        customer_id,
        count(order_id) as count_orders,
        sum(order_total) as sum_order_total

    from orders
    group by customer_id

)

select
    customers.customer_id,
    customers.count_lifetime_orders,
    customers.lifetime_spend,
    order_totals.count_orders,
    order_totals.sum_order_total

from customers

left join order_totals
    on customers.customer_id = order_totals.customer_id

where
    customers.count_lifetime_orders != coalesce(order_totals.count_orders, 0)
    or customers.lifetime_spend != coalesce(order_totals.sum_order_total, 0)
