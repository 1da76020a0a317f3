{#
  Compares every model in `models` (in the target schema, built incrementally) with the same
  model in `full_schema` (built with --full-refresh): the rows found on one side only, EXCEPT in
  both directions. Fails when a model in `models` differs; the models in `report_only` are
  compared and reported but may differ (patterns whose start setting does not fit).
  dbt run-operation assert_same_as_full_refresh --args '{full_schema: analytics_full, models: [...]}'
#}
{% macro assert_same_as_full_refresh(full_schema, models, report_only=[]) %}
  {% set failures = [] %}
  {% for model in models + report_only %}
    {% set incremental = adapter.quote(target.schema) ~ '.' ~ adapter.quote(model) %}
    {% set rebuilt = adapter.quote(full_schema) ~ '.' ~ adapter.quote(model) %}
    {% set sql %}
      select
        (select count(*) from (select * from {{ incremental }} except select * from {{ rebuilt }}) as a),
        (select count(*) from (select * from {{ rebuilt }} except select * from {{ incremental }}) as b),
        (select count(*) from {{ rebuilt }})
    {% endset %}
    {% set row = run_query(sql).rows[0] %}
    {% set verdict = 'equal' if (row[0] == 0 and row[1] == 0) else 'DIFFERENT' %}
    {{ log(model ~ ': ' ~ verdict ~ ' (' ~ row[0] ~ ' rows only incremental, ' ~ row[1] ~ ' only in the full refresh, of ' ~ row[2] ~ ')' ~ (' [setting does not fit, reported only]' if model in report_only else ''), info=True) }}
    {% if verdict != 'equal' and model not in report_only %}
      {% do failures.append(model) %}
    {% endif %}
  {% endfor %}
  {% if failures %}
    {{ exceptions.raise_compiler_error('incremental models differ from a full refresh: ' ~ failures | join(', ')) }}
  {% endif %}
{% endmacro %}
