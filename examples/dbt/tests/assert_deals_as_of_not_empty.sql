-- The point-in-time model finds deals at var('deals_as_of') (the default lies inside the demo's
-- data; pass an instant before any deal existed and this fails on purpose).
select cast('{{ var("deals_as_of") }}' as timestamp) as as_of
where not exists (select 1 from {{ ref('deals_as_of') }})
