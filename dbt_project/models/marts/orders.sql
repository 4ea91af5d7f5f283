{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_vanished('order_id', ref('stg_shop__orders')) }}",
    )
}}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('order_items') }}

),

order_items_summary as (

    select
        order_id,
        cast(sum(supply_cost) as numeric(16, 2)) as order_cost,
        cast(sum(product_price) as numeric(16, 2)) as order_items_subtotal,
        sum(case when is_food_item then 1 else 0 end) as count_food_items,
        sum(case when is_drink_item then 1 else 0 end) as count_drink_items,
        count(order_item_id) as count_order_items,
        max(load_id) as load_id

    from order_items
    group by order_id

),

orders_with_items as (

    select
        orders.order_id,
        orders.location_id,
        orders.customer_id,
        orders.subtotal,
        orders.tax_paid,
        orders.order_total,
        orders.ordered_at,

        coalesce(order_items_summary.order_cost, 0.00) as order_cost,
        coalesce(order_items_summary.order_items_subtotal, 0.00) as order_items_subtotal,
        coalesce(order_items_summary.count_food_items, 0) as count_food_items,
        coalesce(order_items_summary.count_drink_items, 0) as count_drink_items,
        coalesce(order_items_summary.count_order_items, 0) as count_order_items,
        coalesce(order_items_summary.count_food_items > 0, false) as is_food_order,
        coalesce(order_items_summary.count_drink_items > 0, false) as is_drink_order,

        {{ latest_load_id(['orders.load_id', 'order_items_summary.load_id']) }} as load_id

    from orders

    left join order_items_summary
        on orders.order_id = order_items_summary.order_id

),

{% if is_incremental() %}

    -- a new or changed order can move every other order of its customer in the customer's
    -- sequence (a late-arriving order was placed before ones already here), so all orders of
    -- the customers touched by new loads are numbered again

    touched_customers as (

        select distinct customer_id
        from orders_with_items
        where {{ in_incremental_window('load_id') }}

    ),

    orders_to_number as (

        select * from orders_with_items
        where
            {{ in_incremental_window('load_id') }}
            or customer_id in (select touched_customers.customer_id from touched_customers)

    ),

{% else %}

    orders_to_number as (

        select * from orders_with_items

    ),

{% endif %}

final as (

    select
        order_id,
        location_id,
        customer_id,
        subtotal,
        tax_paid,
        order_total,
        ordered_at,
        order_cost,
        order_items_subtotal,
        count_food_items,
        count_drink_items,
        count_order_items,
        is_food_order,
        is_drink_order,
        row_number() over (
            partition by customer_id
            order by ordered_at, order_id
        ) as customer_order_number,
        load_id

    from orders_to_number

)

select * from final
