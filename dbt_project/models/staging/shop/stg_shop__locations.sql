with

source as (

    select * from {{ source('shop', 'stores') }}

),

final as (

    select
        cast(id as text) as location_id,
        cast(name as text) as location_name,
        cast(tax_rate as numeric(6, 4)) as tax_rate,
        {{ utc_timestamptz('opened_at') }} as opened_at,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
