with

source as (

    select * from {{ source('shop', 'customers') }}

),

final as (

    select
        cast(id as text) as customer_id,
        cast(name as text) as customer_name,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
