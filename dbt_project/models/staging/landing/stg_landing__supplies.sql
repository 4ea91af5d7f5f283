with

source as (

    select * from {{ source('landing', 'supplies') }}

),

final as (

    select
        -- a supply id repeats for every product it is used for
        {{ surrogate_key(['id', 'sku']) }} as supply_uuid,
        cast(id as text) as supply_id,
        cast(sku as text) as product_id,

        cast(name as text) as supply_name,
        {{ cents_to_dollars('cost') }} as supply_cost,
        cast(perishable as boolean) as is_perishable_supply,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
