-- The current deals, maintained incrementally: the MERGE-on-latest-active pattern that dbt
-- projects on Fivetran history mode use to avoid rescanning the whole history table.
--
-- First run (or --full-refresh): every active row. Later runs: only the versions written since
-- the last run (_fivetran_synced after the newest one already in this table), keeping the latest
-- active version per id, merged on deal_id: a changed deal is updated in place, a new deal is
-- inserted.
--
-- A delete adds no row to the history table: it closes the active row (sets _fivetran_end and
-- _fivetran_active = false), so a filter on _fivetran_synced alone never sees it. The post-hook
-- removes deals that no longer have an active version.
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='deal_id',
        on_schema_change='append_new_columns',
        post_hook="delete from {{ this }} where deal_id not in (select id from {{ source('pipedrive', 'deal_history') }} where _fivetran_active)"
    )
}}

with changed as (
    select *, row_number() over (partition by id order by _fivetran_start desc) as newest
    from {{ source('pipedrive', 'deal_history') }}
    where _fivetran_active
    {% if is_incremental() %}
      and _fivetran_synced > (select coalesce(max(synced_at), timestamp '1970-01-01') from {{ this }})
    {% endif %}
),

latest_active as (
    select * from changed where newest = 1
)

select
    id as deal_id,
    title,
    status,
    value,
    currency,
    pipeline_id,
    stage_id,
    org_id as organization_id,
    update_time as updated_at,
    _fivetran_start as valid_from,
    _fivetran_synced as synced_at
from latest_active
