-- The incremental model must hold exactly what a full rebuild would: the active deals.
-- Returns the rows found on one side only.
with incremental as (
    select deal_id, title, status, value, stage_id, valid_from from {{ ref('deals_current') }}
),
full_rebuild as (
    select deal_id, title, status, value, stage_id, valid_from from {{ ref('stg_pipedrive__deals') }}
)
(select 'only in deals_current' as side, * from (select * from incremental except select * from full_rebuild) as only_incremental)
union all
(select 'only in stg_pipedrive__deals' as side, * from (select * from full_rebuild except select * from incremental) as only_rebuilt)
