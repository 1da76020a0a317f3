-- The current version of every person (contact).
select
    id as person_id,
    name,
    job_title,
    org_id as organization_id,
    owner_id,
    add_time as added_at,
    update_time as updated_at,
    _fivetran_start as valid_from,
    _fivetran_synced as synced_at
from {{ source('pipedrive', 'person_history') }}
where _fivetran_active
