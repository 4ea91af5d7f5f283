with

tweets as (

    select * from {{ ref('stg_social__tweets') }}

),

sentiment_terms as (

    select * from {{ ref('sentiment_terms') }}

),

term_matches as (

    select
        tweets.tweet_id,
        sentiment_terms.sentiment

    from tweets

    inner join sentiment_terms
        on {{ dbt.position('lower(sentiment_terms.term)', 'lower(tweets.tweet_content)') }} > 0

),

match_counts as (

    select
        tweet_id,
        sum(case when sentiment = 'positive' then 1 else 0 end) as count_positive_terms,
        sum(case when sentiment = 'negative' then 1 else 0 end) as count_negative_terms

    from term_matches
    group by tweet_id

),

final as (

    select
        tweets.tweet_id,
        tweets.customer_id,
        tweets.tweeted_at,
        tweets.tweet_content,
        coalesce(match_counts.count_positive_terms, 0) as count_positive_terms,
        coalesce(match_counts.count_negative_terms, 0) as count_negative_terms,
        case
            when
                coalesce(match_counts.count_positive_terms, 0)
                > coalesce(match_counts.count_negative_terms, 0)
                then 'positive'
            when
                coalesce(match_counts.count_negative_terms, 0)
                > coalesce(match_counts.count_positive_terms, 0)
                then 'negative'
            else 'neutral'
        end as sentiment,
        tweets.load_id

    from tweets

    left join match_counts
        on tweets.tweet_id = match_counts.tweet_id

)

select * from final
