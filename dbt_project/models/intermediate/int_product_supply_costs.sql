with

supplies as (

    select * from {{ ref('stg_landing__supplies') }}

),

final as (

    select
        product_id,
        cast(sum(supply_cost) as numeric(16, 2)) as supply_cost,
        count(supply_id) as count_supplies,
        max(load_id) as load_id

    from supplies
    group by product_id

)

select * from final
