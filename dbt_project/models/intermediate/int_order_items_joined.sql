with

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

product_supply_costs as (

    select * from {{ ref('int_product_supply_costs') }}

),

final as (

    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.product_id,
        orders.ordered_at,

        products.product_name,
        products.product_price,
        products.is_food_item,
        products.is_drink_item,
        coalesce(product_supply_costs.supply_cost, 0.00) as supply_cost,

        -- a change to the item, its order, its product or the product's supplies is a change
        -- to this row: the incremental order_items mart picks it up by this load id
        {{ latest_load_id([
            'order_items.load_id',
            'orders.load_id',
            'products.load_id',
            'product_supply_costs.load_id',
        ]) }} as load_id

    from order_items

    left join orders
        on order_items.order_id = orders.order_id

    left join products
        on order_items.product_id = products.product_id

    left join product_supply_costs
        on order_items.product_id = product_supply_costs.product_id

)

select * from final
