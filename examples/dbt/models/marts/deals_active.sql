-- The current state, as current-state models over Fivetran history tables filter it: the rows
-- whose _fivetran_active is true (or NULL, for tables that were not always in history mode).
select id as deal_id, title, status, value, stage_id, _fivetran_start as valid_from
from {{ ref('stg_pipedrive__deal_history') }}
where coalesce(_fivetran_active, true)
