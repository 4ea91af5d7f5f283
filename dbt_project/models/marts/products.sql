with

products as (

    select * from {{ ref('stg_shop__products') }}

),

final as (

    select
        product_id,
        product_name,
        product_type,
        product_description,
        product_price,
        is_food_item,
        is_drink_item,
        load_id

    from products

)

select * from final
