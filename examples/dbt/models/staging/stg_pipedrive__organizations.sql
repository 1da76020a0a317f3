-- The current version of every organization.
select
    id as organization_id,
    name,
    industry,
    employee_count,
    annual_revenue,
    address_country,
    owner_id,
    add_time as added_at,
    update_time as updated_at,
    _fivetran_start as valid_from,
    _fivetran_synced as synced_at
from {{ source('pipedrive', 'organization_history') }}
where _fivetran_active
