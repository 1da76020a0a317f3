-- Point in time: every deal as it was at var('deals_as_of'), reconstructed from its validity
-- windows. A version is valid from _fivetran_start to _fivetran_end inclusive (the next version
-- starts 1 ms after the previous one ends, so an instant falls in at most one version per id);
-- the current version ends at 9999-12-31 23:59:59. Deals deleted before that instant, and deals
-- created after it, are absent.
select
    id as deal_id,
    title,
    status,
    value,
    currency,
    pipeline_id,
    stage_id,
    org_id as organization_id,
    _fivetran_start as valid_from,
    _fivetran_end as valid_to,
    _fivetran_active as is_current,
    cast('{{ var("deals_as_of") }}' as timestamp) as as_of
from {{ source('pipedrive', 'deal_history') }}
where cast('{{ var("deals_as_of") }}' as timestamp) between _fivetran_start and _fivetran_end
