{#
  dbt's check strategy stamps versions with snapshot_get_time(), i.e. the
  wall clock. The benchmark pins it to the extract's observation time (the
  same --at that syncline and dlt get), so all three tools write the same
  validity windows. Overrides dbt-duckdb's dispatch target for this project.
#}
{% macro duckdb__snapshot_get_time() -%}
  cast('{{ var("snapshot_at") }}' as timestamp)
{%- endmacro %}
