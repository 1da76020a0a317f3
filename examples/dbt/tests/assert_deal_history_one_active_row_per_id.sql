-- History contract, invariant 1: no deal has more than one active version.
-- Returns the offending ids (the test fails when it returns any row).
select
    id,
    count(*) as active_rows
from {{ source('pipedrive', 'deal_history') }}
where _fivetran_active
group by id
having count(*) > 1
