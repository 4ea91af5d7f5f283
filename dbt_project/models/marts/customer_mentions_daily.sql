with

tweets as (

    select * from {{ ref('int_tweets_scored') }}

),

final as (

    select
        {{ utc_date('tweeted_at') }} as tweeted_on,
        count(tweet_id) as count_tweets,
        count(distinct customer_id) as count_customers,
        sum(case when sentiment = 'positive' then 1 else 0 end) as count_positive_tweets,
        sum(case when sentiment = 'neutral' then 1 else 0 end) as count_neutral_tweets,
        sum(case when sentiment = 'negative' then 1 else 0 end) as count_negative_tweets,
        max(load_id) as load_id

    from tweets
    group by {{ utc_date('tweeted_at') }}

)

select * from final
