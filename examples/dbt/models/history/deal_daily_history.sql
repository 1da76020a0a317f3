-- One row per deal and day: the version valid on that day (the last one to start, when several
-- were), from a date spine joined on _fivetran_start <= day and _fivetran_end >= day, as
-- Fivetran's history-mode packages do. They need a far-future end for the current version,
-- never NULL (the fivetran profile's 9999-12-31 23:59:59).
--
-- Incremental: each run rebuilds the days from the newest one already here. Needs
-- [history] start = "observed": a version written later then always starts on or after that
-- day. With start = "source", a version written late can start on an earlier day, which is
-- never rebuilt.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date_day', 'deal_id']
    )
}}

with recursive spine (date_day) as (
    select
        {% if is_incremental() %}
        (select max(date_day) from {{ this }})
        {% else %}
        (select min(cast(_fivetran_start as date)) from {{ ref('stg_pipedrive__deal_history') }})
        {% endif %}
    union all
    select cast(date_day + 1 as date)
    from spine
    where date_day < (select max(cast(_fivetran_start as date)) from {{ ref('stg_pipedrive__deal_history') }})
),

valid as (
    select
        spine.date_day,
        history.id,
        history.status,
        history.value,
        history.stage_id,
        history._fivetran_start,
        row_number() over (partition by history.id, spine.date_day order by history._fivetran_start desc) as newest
    from spine
    join {{ ref('stg_pipedrive__deal_history') }} as history
      on cast(history._fivetran_start as date) <= spine.date_day
     and cast(history._fivetran_end as date) >= spine.date_day
)

select date_day, id as deal_id, status, value, stage_id, _fivetran_start as valid_from
from valid
where newest = 1
