with

source as (

    select * from {{ source('social', 'tweets') }}

),

final as (

    select
        cast(id as text) as tweet_id,
        cast(user_id as text) as customer_id,
        {{ utc_timestamptz('tweeted_at') }} as tweeted_at,
        cast(content as text) as tweet_content,

        cast(_dlt_load_id as text) as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from final
