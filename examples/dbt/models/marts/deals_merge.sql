-- The MERGE pattern of teams that replaced their connector with an in-house service: take the
-- active rows that started after the newest start already merged, and merge them on the id.
-- With the CDC prefix the start column is _cdc_start: --vars '{history_prefix: _cdc_}'.
--
-- Needs [history] start = "observed": only then does every version written later start after
-- every version already merged. With start = "source", a version written late (a webhook that
-- arrived late, a record healed by the reconciler) starts before max(version_start) and is
-- skipped for good (run.sh measures how many rows then differ from a full refresh).
--
-- A delete adds no row (it closes the active one); the post-hook removes the deals that no
-- longer have an active version, as deals_current does.
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='deal_id',
        post_hook="delete from {{ this }} where deal_id not in (select id from {{ source('pipedrive', 'deal_history') }} where {{ var('history_prefix', '_fivetran_') }}active)"
    )
}}
{% set prefix = var('history_prefix', '_fivetran_') %}

select
    id as deal_id,
    title,
    status,
    value,
    stage_id,
    {{ prefix }}start as version_start
from {{ source('pipedrive', 'deal_history') }}
where {{ prefix }}active
{% if is_incremental() %}
  and {{ prefix }}start > (select max(version_start) from {{ this }})
{% endif %}
