with

source as (

    select * from {{ source('shop', 'orders') }}

),

final as (

    select
        -- ids
        cast(id as text) as order_id,
        cast(customer as text) as customer_id,
        cast(store_id as text) as location_id,

        -- money (cents in the source)
        {{ cents_to_dollars('subtotal') }} as subtotal,
        {{ cents_to_dollars('tax_paid') }} as tax_paid,
        {{ cents_to_dollars('order_total') }} as order_total,

        -- timestamps
        {{ utc_timestamptz('ordered_at') }} as ordered_at,
        {{ utc_timestamptz('updated_at') }} as updated_at,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
