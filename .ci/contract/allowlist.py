"""Query parameters the connectors send that the vendor's spec does not list for the operation,
but that the vendor README (../shared/vendor/README.md) documents.

Every entry must quote, in `readme`, a passage that appears verbatim in that README (the check
fails when the quote is not found, so an entry cannot outlive its justification). Add an entry
only when the README documents the parameter for that operation; never to silence a parameter
nothing documents (fix the connector instead).

Fields:
- vendor:    "pipedrive" or "halopsa"
- method:    HTTP method of the operation, upper case
- path:      the operation's path as the spec spells it (HaloPSA `/Invoice`, Pipedrive `/deals`)
- parameter: the query parameter's name
- readme:    the README passage documenting it (verbatim, whitespace-insensitive)
- type:      optional; the JSON type its values have ("string", "integer", "boolean"), checked
             instead of the spec's type when the README contradicts the spec's type
"""

PARAMETERS = [
    # HaloPSA invoices: the since-filter used in production, absent from the swagger (which lists
    # only invoicedatestart/invoicedateend). README, section HaloPSA, the `/Invoice` bullet.
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Invoice",
        "parameter": "datesearch",
        "readme": "`/Invoice` has a since-filter: `datesearch=last_modified` with `start_date`",
    },
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Invoice",
        "parameter": "start_date",
        "readme": "`/Invoice` has a since-filter: `datesearch=last_modified` with `start_date`",
    },
]

# Parameters the spec lists with a type the README contradicts: the README's reading wins.
PARAMETER_TYPES = [
    # The swagger types HaloPSA's `lastupdatefromdate`/`lastupdatetodate` as "bool"; they are the
    # bounds of a last-update window (dates). README, section HaloPSA, the `/Client` and
    # `/Tickets` bullets.
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Client",
        "parameter": "lastupdatefromdate",
        "type": "string",
        "readme": "`/Client` lists `lastupdatefromdate` / `lastupdatetodate` in the swagger (clients carry\n  `alastupdate`)",
    },
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Client",
        "parameter": "lastupdatetodate",
        "type": "string",
        "readme": "`/Client` lists `lastupdatefromdate` / `lastupdatetodate` in the swagger (clients carry\n  `alastupdate`)",
    },
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Tickets",
        "parameter": "lastupdatefromdate",
        "type": "string",
        "readme": "`/Tickets` filters: `lastupdatefromdate` / `lastupdatetodate`",
    },
    {
        "vendor": "halopsa",
        "method": "GET",
        "path": "/Tickets",
        "parameter": "lastupdatetodate",
        "type": "string",
        "readme": "`/Tickets` filters: `lastupdatefromdate` / `lastupdatetodate`",
    },
]

# Response fields real HaloPSA payloads carry beyond the swagger's record schema (whose
# `additionalProperties: false` would refuse them). Each entry names the fixture in
# ../shared/fixtures/ that carries the field, and the JSON pointer of the record inside it; the
# check fails when the fixture does not have the field there, and accepts the field with the JSON
# type the fixture's value has (null included, since the vendor's fields are nullable).
RESPONSE_FIELDS = [
    # A real ticket response: "a much-abbreviated Halo response on ticket creation".
    {"vendor": "halopsa", "schema": "Faults", "field": "team_id", "fixture": "halopsa/ticket_create_response_abbreviated.json", "pointer": ""},
    {"vendor": "halopsa", "schema": "Faults", "field": "user", "fixture": "halopsa/ticket_create_response_abbreviated.json", "pointer": ""},
    {"vendor": "halopsa", "schema": "Faults", "field": "priority", "fixture": "halopsa/ticket_create_response_abbreviated.json", "pointer": ""},
    # The live webhook delivery's ticket carries `team_id` too.
    {"vendor": "halopsa", "schema": "Faults", "field": "team_id", "fixture": "halopsa/webhook_ticket_status_changed_live.json", "pointer": "/ticket"},
]
