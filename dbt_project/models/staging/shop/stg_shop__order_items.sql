with

source as (

    select * from {{ source('shop', 'items') }}

),

final as (

    select
        cast(id as text) as order_item_id,
        cast(order_id as text) as order_id,
        cast(sku as text) as product_id,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
