#!/usr/bin/env python3
"""Tests of the contract checker itself, on the real vendor payloads in ../shared/fixtures: the
spec conversion accepts what the vendors really send, and a drifted body or an undocumented
parameter is reported."""

from __future__ import annotations

import copy
import json
import os
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check  # noqa: E402

VENDOR = Path(os.environ.get("SYNCLINE_VENDOR_DIR", check.SHARED / "vendor"))
FIXTURES = Path(os.environ.get("SYNCLINE_FIXTURES", check.SHARED / "fixtures"))

# Spec examples (SOURCES.md: "the `example` of the 200 response in the vendor's own OpenAPI
# spec") and the operation they answer.
PIPEDRIVE_EXAMPLES = [
    ("v2_deals_list_page.json", "/api/v2/deals"),
    ("v2_deal_get.json", "/api/v2/deals/1"),
    ("v2_organizations_list_page.json", "/api/v2/organizations"),
    ("v2_persons_list_page.json", "/api/v2/persons"),
    ("v2_pipelines_list_page.json", "/api/v2/pipelines"),
    ("v2_stages_list_page.json", "/api/v2/stages"),
    ("v2_dealFields_page.json", "/api/v2/dealFields"),
    ("v1_users_list.json", "/api/v1/users"),
    ("v1_dealFields_page.json", "/api/v1/dealFields"),
    ("v1_webhooks_list.json", "/api/v1/webhooks"),
]


def entry(path: str, body, query=(), status: int = 200) -> dict:
    return {"method": "GET", "path": path, "endpoint": path, "query": [list(pair) for pair in query], "status": status, "body": body}


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class PipedriveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.specs = [
            check.load_spec("pipedrive", "v2", VENDOR / "pipedrive" / "openapi-v2.yaml", "/api/v2"),
            check.load_spec("pipedrive", "v1", VENDOR / "pipedrive" / "openapi-v1.yaml", "/api/v1"),
        ]

    def test_the_spec_examples_validate(self):
        requests = [entry(path, fixture(f"pipedrive/{name}")) for name, path in PIPEDRIVE_EXAMPLES]
        violations, used = check.validate("pipedrive", self.specs, requests)
        self.assertEqual([], [(v.operation, v.where, v.detail) for v in violations])
        self.assertIn("GET v2/deals/{id}", used)
        self.assertIn("GET v1/users", used)

    def test_a_wrong_type_and_a_missing_envelope_are_reported(self):
        body = copy.deepcopy(fixture("pipedrive/v2_deals_list_page.json"))
        body["data"][0]["value"] = "a lot"
        body["additional_data"] = {"next_cursor": 7}
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals", body)])
        found = {(v.where, v.kind) for v in violations}
        self.assertIn(("/data/*/value", "response"), found)
        self.assertIn(("/additional_data/next_cursor", "response"), found)

    def test_nullable_fields_accept_null_and_others_do_not(self):
        body = copy.deepcopy(fixture("pipedrive/v2_deal_get.json"))
        body["data"]["probability"] = None  # `nullable: true` in the spec
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals/1", body)])
        self.assertEqual([], violations)
        body["data"]["title"] = None  # not nullable
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals/1", body)])
        self.assertEqual(["/data/title"], [v.where for v in violations])

    def test_a_null_the_description_documents_is_accepted(self):
        body = copy.deepcopy(fixture("pipedrive/v2_deals_list_page.json"))
        body["additional_data"]["next_cursor"] = None  # "will be `null` if you have reached the end"
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals", body)])
        self.assertEqual([], violations)
        body["data"][0]["won_time"] = None  # a plain string in the spec, no null documented
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals", body)])
        self.assertEqual(["/data/*/won_time"], [v.where for v in violations])

    def test_parameters_are_checked_by_name_and_value(self):
        body = fixture("pipedrive/v2_deals_list_page.json")
        query = [("limit", "500"), ("sort_by", "update_time"), ("status", "open,deleted"), ("since", "x"), ("sort_direction", "up")]
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v2/deals", body, query)])
        found = {(v.kind, v.where) for v in violations}
        self.assertEqual({("parameter", "since"), ("parameter value", "sort_direction")}, found)

    def test_an_unknown_operation_is_reported(self):
        violations, _ = check.validate("pipedrive", self.specs, [entry("/api/v1/deals", {"success": True})])
        self.assertEqual(["operation"], [v.kind for v in violations])


class HaloTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = check.load_spec("halopsa", "halopsa", VENDOR / "halopsa" / "swagger.json", "/api")
        problems = check.apply_response_fields(cls.spec, "halopsa", FIXTURES)
        assert not problems, problems

    def test_real_tickets_validate_as_faults(self):
        ticket = fixture("halopsa/ticket_create_response_abbreviated.json")
        live = fixture("halopsa/webhook_ticket_status_changed_live.json")["ticket"]
        requests = [entry("/api/Tickets/1234", ticket), entry("/api/Tickets/4242", live)]
        violations, _ = check.validate("halopsa", [self.spec], requests)
        self.assertEqual([], [(v.operation, v.where, v.detail) for v in violations])

    def test_ticket_list_rows_validate_against_faults_list_only(self):
        live = fixture("halopsa/webhook_ticket_status_changed_live.json")["ticket"]
        list_fields = set(self.spec.components["schemas"]["Faults_List"]["properties"])
        row = {name: value for name, value in live.items() if name in list_fields}
        self.assertIn("team_id", live)
        self.assertNotIn("team_id", row, "the live ticket's team_id is a detail field")
        page = {"record_count": 1, "page_no": 1, "page_size": 50, "tickets": [row]}
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Tickets", page)])
        self.assertEqual([], [(v.operation, v.where, v.detail) for v in violations])
        # The detail record as a list row: fields the list does not send are reported.
        page["tickets"] = [live]
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Tickets", page)])
        self.assertEqual([("/tickets/*", "field not in the schema: ('team_id' was unexpected)")], [(v.where, v.detail) for v in violations])

    def test_opt_in_list_fields_are_accepted_only_when_asked(self):
        invoice = {"id": 1, "client_id": 2, "last_modified": "2026-01-01T00:00:00.0000000Z", "lines": []}
        page = {"record_count": 1, "invoices": [invoice]}
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Invoice", page)])
        self.assertEqual(["/invoices/*"], [v.where for v in violations])
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Invoice", page, [("includelines", "true")])])
        self.assertEqual([], violations)
        client = {"id": 1, "name": "A", "alastupdate": "2026-01-01T00:00:00.0000000Z", "notes": ""}
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Client", {"record_count": 1, "clients": [client]})])
        self.assertEqual(["/clients/*"], [v.where for v in violations])
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Client/1", client)])
        self.assertEqual([], violations, "a detail carries its notes")

    def test_a_field_outside_the_schema_and_a_wrong_envelope_are_reported(self):
        ticket = dict(fixture("halopsa/ticket_create_response_abbreviated.json"), made_up=1)
        requests = [
            entry("/api/Tickets/1234", ticket),
            entry("/api/Invoice", {"record_count": "1", "invoices": [{"id": 1}], "extra": []}),
        ]
        violations, _ = check.validate("halopsa", [self.spec], requests)
        found = {(v.operation, v.where) for v in violations}
        self.assertEqual({("GET halopsa/Tickets/{id}", "/"), ("GET halopsa/Invoice", "/"), ("GET halopsa/Invoice", "/record_count")}, found)

    def test_readme_parameters_are_allowlisted_and_others_are_not(self):
        query = [("datesearch", "last_modified"), ("start_date", "2026-01-01T00:00:00Z"), ("pageinate", "true"), ("page_no", "1"), ("lastupdatefromdate", "2026-01-01")]
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Invoice", {"record_count": 0, "invoices": []}, query)])
        self.assertEqual([("parameter", "lastupdatefromdate")], [(v.kind, v.where) for v in violations])
        query = [("lastupdatefromdate", "2026-01-01T00:00:00Z"), ("count", "many")]
        violations, _ = check.validate("halopsa", [self.spec], [entry("/api/Client", {"record_count": 0, "clients": []}, query)])
        self.assertEqual([("parameter value", "count")], [(v.kind, v.where) for v in violations])

    def test_every_allowlist_entry_quotes_the_readme(self):
        self.assertEqual([], check.check_allowlist(VENDOR))


if __name__ == "__main__":
    unittest.main(verbosity=1)
