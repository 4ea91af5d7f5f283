with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

customer_orders_summary as (

    select
        customer_id,
        count(distinct order_id) as count_lifetime_orders,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        cast(sum(subtotal) as numeric(16, 2)) as lifetime_spend_pretax,
        cast(sum(tax_paid) as numeric(16, 2)) as lifetime_tax_paid,
        cast(sum(order_total) as numeric(16, 2)) as lifetime_spend,
        max(load_id) as load_id

    from orders
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.customer_name,
        coalesce(customer_orders_summary.count_lifetime_orders, 0) as count_lifetime_orders,
        customer_orders_summary.first_ordered_at,
        customer_orders_summary.last_ordered_at,
        coalesce(customer_orders_summary.lifetime_spend_pretax, 0.00) as lifetime_spend_pretax,
        coalesce(customer_orders_summary.lifetime_tax_paid, 0.00) as lifetime_tax_paid,
        coalesce(customer_orders_summary.lifetime_spend, 0.00) as lifetime_spend,
        case
            when customer_orders_summary.count_lifetime_orders > 1 then 'returning'
            else 'new'
        end as customer_type,
        {{ latest_load_id(['customers.load_id', 'customer_orders_summary.load_id']) }} as load_id

    from customers

    left join customer_orders_summary
        on customers.customer_id = customer_orders_summary.customer_id

)

select * from final
