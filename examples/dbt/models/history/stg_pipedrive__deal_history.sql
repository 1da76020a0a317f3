-- History staging, as Fivetran's dbt packages for history mode build it: incremental on
-- _fivetran_start >= max(_fivetran_start), unique key (id, _fivetran_start), delete+insert, so
-- the last start is taken again and replaced rather than duplicated.
--
-- A new version also closes the previous one (its _fivetran_end and _fivetran_active change,
-- its start does not), so the start predicate alone would keep the previous version open here
-- forever, whatever the start setting. syncline sets _fivetran_synced on every write of a row,
-- the close included, so the second predicate takes closed rows again. With start = "source"
-- it also takes the versions written late (their start is old, their synced time is not).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['id', '_fivetran_start'],
        on_schema_change='fail'
    )
}}

select
    id,
    title,
    status,
    value,
    stage_id,
    _fivetran_start,
    _fivetran_end,
    _fivetran_active,
    _fivetran_synced
from {{ source('pipedrive', 'deal_history') }}
{% if is_incremental() %}
where _fivetran_start >= (select max(_fivetran_start) from {{ this }})
   or _fivetran_synced >= (select max(_fivetran_synced) from {{ this }})
{% endif %}
