with

supplies as (

    select * from {{ ref('stg_landing__supplies') }}

),

final as (

    select
        supply_uuid,
        supply_id,
        product_id,
        supply_name,
        supply_cost,
        is_perishable_supply,
        load_id

    from supplies

)

select * from final
