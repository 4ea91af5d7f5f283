with

source as (

    select * from {{ source('shop', 'products') }}

),

final as (

    select
        cast(sku as text) as product_id,
        cast(name as text) as product_name,
        cast(type as text) as product_type,
        cast(description as text) as product_description,
        {{ cents_to_dollars('price') }} as product_price,

        coalesce(cast(type as text) = 'jaffle', false) as is_food_item,
        coalesce(cast(type as text) = 'beverage', false) as is_drink_item,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
