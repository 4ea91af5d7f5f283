{{
    config(
        materialized='incremental',
        unique_key='order_item_id',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_vanished('order_item_id', ref('int_order_items_joined')) }}",
    )
}}

with

order_items as (

    select * from {{ ref('int_order_items_joined') }}

),

final as (

    select
        order_item_id,
        order_id,
        product_id,
        ordered_at,
        product_name,
        product_price,
        is_food_item,
        is_drink_item,
        supply_cost,
        load_id

    from order_items

    {% if is_incremental() %}
        where {{ in_incremental_window('load_id') }}
    {% endif %}

)

select * from final
