-- History contract, invariant 2: a deal's validity windows are ordered and never overlap, and
-- only the last version of a deal can be active.
with ordered as (
    select
        id,
        _fivetran_start,
        _fivetran_end,
        _fivetran_active,
        lead(_fivetran_start) over (partition by id order by _fivetran_start) as next_start
    from {{ source('pipedrive', 'deal_history') }}
)
select *
from ordered
where _fivetran_end < _fivetran_start
   or (next_start is not null and (_fivetran_end >= next_start or _fivetran_active))
