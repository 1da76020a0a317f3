-- The current version of every deal: the active row of deal_history. A deleted deal has no
-- active row, so it is not here.
select
    id as deal_id,
    title,
    status,
    value,
    currency,
    pipeline_id,
    stage_id,
    org_id as organization_id,
    person_id,
    owner_id,
    add_time as added_at,
    update_time as updated_at,
    _fivetran_start as valid_from,
    _fivetran_synced as synced_at
from {{ source('pipedrive', 'deal_history') }}
where _fivetran_active
