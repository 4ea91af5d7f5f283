with

locations as (

    select * from {{ ref('stg_shop__locations') }}

),

store_regions as (

    select * from {{ ref('store_regions') }}

),

final as (

    select
        locations.location_id,
        locations.location_name,
        locations.tax_rate,
        locations.opened_at,
        store_regions.state_code,
        store_regions.region,
        locations.load_id

    from locations

    left join store_regions
        on locations.location_name = store_regions.location_name

)

select * from final
