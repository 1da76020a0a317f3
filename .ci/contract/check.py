#!/usr/bin/env python3
"""Contract check: the simulator against the vendors' published specs, as the connectors use it.

For Pipedrive and HaloPSA it starts `syncline simulate` with its request log on, runs the real
connectors against it (`syncline sync --mode full`, changes upstream, `syncline sync --mode
incremental`, then `syncline serve` receiving the simulator's webhooks and re-fetching the
records), reads back every request the simulator served (`GET /_sim/requests`) and checks:

- every operation used exists in the vendor's spec (path and method);
- every query parameter sent is one the spec documents for that operation (or the security
  scheme's query key), or is allowlisted in allowlist.py with a verbatim README citation; its
  value has the documented type (and enum / maximum where the spec gives one);
- every 2xx response body validates against the spec's response schema: Pipedrive the OpenAPI
  200 schema (nullable -> null type, $ref resolved, allOf kept as JSON Schema allOf); HaloPSA,
  whose swagger declares no response bodies, the record schema of `components.schemas` (Faults =
  ticket, InvoiceHeader, QuotationHeader, Area = client) for details, and the list-row schema
  inside the list envelope (`record_count`, `page_no`, `page_size` typed as in the swagger's
  `*_View` schemas): tickets `Faults_List`; invoices, quotations and clients, which have no
  list-row schema, their record schema without the fields the list sends only when asked
  (`lines` without `includelines=true`, `notes` without `includenotes=true`).

It prints a table of violations and exits 1 on any (2 when it could not run). Run it through
.ci/contract.sh, which installs jsonschema and PyYAML into a virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import allowlist  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """`shared/` beside the clone (as CI lays it), or beside an ancestor (a git worktree)."""
    for parent in REPO.parents:
        if (parent / "shared" / "vendor").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = shared_dir()

# HaloPSA record schemas (vendor README: "record shapes are in `components.schemas` (`Faults` =
# ticket, `InvoiceHeader`, `QuotationHeader`, `Area` = client").
HALO_RECORDS = {
    "/Tickets": ("Faults", "tickets"),
    "/Invoice": ("InvoiceHeader", "invoices"),
    "/Quotation": ("QuotationHeader", "quotes"),
    "/Client": ("Area", "clients"),
}
# List rows: the swagger's list-row schema where it has one (`Faults_List`: 278 of the 835
# `Faults` fields); elsewhere the record schema less the fields the list operation documents as
# opt-in through its own parameters (`GET /Invoice` and `GET /Quotation` `includelines`,
# `GET /Client` `includenotes`): a row carrying one unasked is a violation.
HALO_LIST_ROWS = {
    "/Tickets": "Faults_List",
}
HALO_LIST_OPT_IN = {
    "/Invoice": {"lines": "includelines"},
    "/Quotation": {"lines": "includelines"},
    "/Client": {"notes": "includenotes"},
}
# The swagger's paged views (`Attachment_View` and friends) carry these envelope fields.
HALO_ENVELOPE_FROM = "Attachment_View"


class CheckError(Exception):
    """The check could not run (as opposed to finding violations)."""


# ---------------------------------------------------------------------------------------------
# Specs


# A schema whose own description says its value is null in some case documents a null, even
# where the spec forgot `nullable: true`: Pipedrive's `additional_data.next_cursor` ("The value of
# the `next_cursor` field will be `null` if you have reached the end of the dataset"), v1
# "`null` is returned", "If not archived then 'null'". Wording about *sending* null (clearing a
# custom field) does not match.
NULL_DOCUMENTED = re.compile(r"will be `null`|`null` is returned|\bnull if\b|then 'null'", re.I)


def openapi_to_json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: `nullable: true` (or a description documenting a null
    value, see NULL_DOCUMENTED) becomes a null type (or an anyOf with null where there is no
    `type`), OpenAPI-only keywords are dropped, HaloPSA's non-standard "int"/"bool"/"double"
    types are normalised."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("nullable", "example", "examples", "x-example", "discriminator", "xml", "externalDocs", "deprecated", "readOnly", "writeOnly"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: openapi_to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = openapi_to_json_schema(value)
    if isinstance(out.get("type"), str):
        out["type"] = normalise_type(out["type"])
    documented_null = isinstance(node.get("description"), str) and NULL_DOCUMENTED.search(node["description"])
    if node.get("nullable") is True or documented_null:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + (["null"] if "null" not in types else [])
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def normalise_type(name: str) -> str:
    return {
        "int": "integer",
        "long": "integer",
        "bool": "boolean",
        "double": "number",
        "float": "number",
        "decimal": "number",
    }.get(name, name)


@dataclass
class Operation:
    vendor: str
    spec_name: str
    path: str
    method: str
    parameters: dict  # name -> JSON Schema (already converted)
    parameter_descriptions: dict
    response_schema: dict | None  # JSON Schema of the 2xx body, with `components` for $ref
    regex: re.Pattern
    literal_segments: int


@dataclass
class Spec:
    name: str
    document: dict
    prefix: str  # request path prefix on the simulator (`/api/v2`)
    security_query_params: set
    operations: list = field(default_factory=list)

    def find(self, method: str, path: str) -> Operation | None:
        if not path.startswith(self.prefix + "/"):
            return None
        rest = path[len(self.prefix):]
        matches = [op for op in self.operations if op.method == method and op.regex.fullmatch(rest)]
        if not matches:
            return None
        return max(matches, key=lambda op: op.literal_segments)


def path_regex(template: str) -> tuple[re.Pattern, int]:
    parts = []
    literals = 0
    for segment in template.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
            literals += 1
    return re.compile("/" + "/".join(parts)), literals


def load_spec(vendor: str, name: str, path: Path, prefix: str) -> Spec:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        document = json.loads(text)
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(text, Loader=loader)
    components = openapi_to_json_schema(document.get("components", {}))
    security_query = {
        scheme.get("name")
        for scheme in document.get("components", {}).get("securitySchemes", {}).values()
        if scheme.get("type") == "apiKey" and scheme.get("in") == "query"
    }
    spec = Spec(name=name, document=document, prefix=prefix, security_query_params=security_query)
    for template, item in document.get("paths", {}).items():
        shared_params = item.get("parameters", [])
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters, descriptions = {}, {}
            for parameter in shared_params + operation.get("parameters", []):
                parameter = resolve_ref(document, parameter)
                if parameter.get("in") != "query":
                    continue
                schema = parameter.get("schema", {"type": parameter.get("type", "string")})
                parameters[parameter["name"]] = openapi_to_json_schema(schema)
                descriptions[parameter["name"]] = parameter.get("description", "")
            response_schema = None
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith("2"):
                    continue
                content = resolve_ref(document, response).get("content", {})
                media = content.get("application/json") or next(iter(content.values()), None)
                if media and "schema" in media:
                    response_schema = {"allOf": [openapi_to_json_schema(media["schema"])], "components": components}
                    break
            regex, literals = path_regex(template)
            spec.operations.append(
                Operation(vendor, name, template, method.upper(), parameters, descriptions, response_schema, regex, literals)
            )
    spec.components = components
    return spec


def resolve_ref(document: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        if not pointer.startswith("#/"):
            raise CheckError(f"external $ref {pointer} is not supported")
        target = document
        for part in pointer[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def halo_opted_in(base: str, query) -> frozenset:
    """The opt-in list fields a request asked for (`includelines=true`, ...)."""
    asked = {name for name, value in query if str(value).lower() in ("true", "1")}
    return frozenset(field for field, parameter in HALO_LIST_OPT_IN.get(base, {}).items() if parameter in asked)


def halo_list_row_schema(spec: Spec, base: str, opted_in: frozenset) -> str:
    """The name of the schema list rows of `base` validate against (derived ones are added to
    `components.schemas` on first use)."""
    if base in HALO_LIST_ROWS:
        return HALO_LIST_ROWS[base]
    record_name, _ = HALO_RECORDS[base]
    left_out = sorted(set(HALO_LIST_OPT_IN.get(base, {})) - opted_in)
    if not left_out:
        return record_name
    name = f"{record_name}__list_row_without_{'_'.join(left_out)}"
    schemas = spec.components["schemas"]
    if name not in schemas:
        derived = json.loads(json.dumps(schemas[record_name]))
        for field in left_out:
            derived.get("properties", {}).pop(field, None)
        schemas[name] = derived
    return name


def halo_response_schema(spec: Spec, operation: Operation, path: str, query=()) -> dict | None:
    """HaloPSA declares no response bodies: the record schema for a detail, the list envelope
    around list rows (see HALO_LIST_ROWS) for a list."""
    components = spec.components
    schemas = components["schemas"]
    base = "/" + operation.path.strip("/").split("/")[0]
    if base not in HALO_RECORDS:
        return None
    record_name, key = HALO_RECORDS[base]
    if operation.path.rstrip("/") != base:
        return {"allOf": [{"$ref": f"#/components/schemas/{record_name}"}], "components": components}
    record = {"$ref": f"#/components/schemas/{halo_list_row_schema(spec, base, halo_opted_in(base, query))}"}
    envelope = schemas[HALO_ENVELOPE_FROM]["properties"]
    return {
        "type": "object",
        "required": ["record_count", key],
        "properties": {
            "page_no": envelope["page_no"],
            "page_size": envelope["page_size"],
            "record_count": envelope["record_count"],
            key: {"type": "array", "items": record},
        },
        "additionalProperties": False,
        "components": components,
    }


# ---------------------------------------------------------------------------------------------
# Parameter checks


def readme_text(vendor_dir: Path) -> str:
    return " ".join((vendor_dir / "README.md").read_text(encoding="utf-8").split())


def check_allowlist(vendor_dir: Path) -> list[str]:
    """Every allowlist entry quotes the README verbatim (whitespace-insensitive)."""
    text = readme_text(vendor_dir)
    problems = []
    for entry in allowlist.PARAMETERS + allowlist.PARAMETER_TYPES:
        quote = " ".join(entry["readme"].split())
        if quote not in text:
            problems.append(f"allowlist entry {entry['vendor']} {entry['method']} {entry['path']} {entry['parameter']}: its README quote is not in README.md: {quote!r}")
    return problems


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def apply_response_fields(spec: Spec, vendor: str, fixtures_dir: Path) -> list[str]:
    """Adds the fixture-backed fields of allowlist.RESPONSE_FIELDS to the record schemas; returns
    the entries whose fixture does not carry the field."""
    problems = []
    for entry in allowlist.RESPONSE_FIELDS:
        if entry["vendor"] != vendor:
            continue
        label = f"response field allowlist entry {entry['schema']}.{entry['field']} ({entry['fixture']})"
        try:
            record = json.loads((fixtures_dir / entry["fixture"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"{label}: cannot read the fixture: {error}")
            continue
        for part in [p for p in entry["pointer"].split("/") if p]:
            record = record.get(part, {}) if isinstance(record, dict) else {}
        if not isinstance(record, dict) or entry["field"] not in record:
            problems.append(f"{label}: the fixture has no field {entry['field']!r} at {entry['pointer'] or '/'}")
            continue
        properties = spec.components["schemas"][entry["schema"]].setdefault("properties", {})
        if entry["field"] in properties and "x-fixture" not in properties[entry["field"]]:
            problems.append(f"{label}: the spec already documents the field; drop the entry")
            continue
        types = set(properties.get(entry["field"], {}).get("type", []))
        types |= {json_type(record[entry["field"]]), "null"}
        properties[entry["field"]] = {"type": sorted(types), "x-fixture": entry["fixture"]}
    return problems


def allowlisted(vendor: str, operation: Operation, name: str) -> dict | None:
    for entry in allowlist.PARAMETERS:
        if (entry["vendor"], entry["method"], entry["path"], entry["parameter"]) == (vendor, operation.method, operation.path, name):
            return entry
    return None


def type_override(vendor: str, operation: Operation, name: str) -> str | None:
    for entry in allowlist.PARAMETER_TYPES:
        if (entry["vendor"], entry["method"], entry["path"], entry["parameter"]) == (vendor, operation.method, operation.path, name):
            return entry["type"]
    return None


def coerce(value: str, schema: dict):
    """A query-string value as the JSON value its schema describes (None when it cannot be)."""
    types = schema.get("type", "string")
    types = types if isinstance(types, list) else [types]
    if "integer" in types:
        return int(value) if re.fullmatch(r"-?\d+", value) else None
    if "number" in types:
        try:
            return float(value)
        except ValueError:
            return None
    if "boolean" in types:
        return {"true": True, "false": False}.get(value.lower())
    if "array" in types:
        items = schema.get("items", {"type": "string"})
        parts = [coerce(part, items) for part in value.split(",")]
        return None if any(part is None for part in parts) else parts
    return value


def parameter_value_problem(value: str, schema: dict, description: str) -> str | None:
    if re.fullmatch(r"List<(\w+)>", str(schema.get("type", ""))):
        inner = normalise_type(re.fullmatch(r"List<(\w+)>", schema["type"]).group(1))
        schema = {"type": "array", "items": {"type": inner}}
    typed = coerce(value, schema)
    if typed is None:
        return f"value {value!r} is not of type {schema.get('type')}"
    candidates = [typed]
    # "Multiple statuses can be included as a comma separated array" (Pipedrive v2 GET /deals).
    if isinstance(typed, str) and "comma separated" in description and "," in typed:
        candidates = typed.split(",")
    for candidate in candidates:
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(candidate), key=str)
        if errors:
            return f"value {value!r}: {errors[0].message}"
    return None


# ---------------------------------------------------------------------------------------------
# Running the connectors against the simulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 30.0):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def wait_for(url: str, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise CheckError(f"{what} did not answer {url} within {seconds:.0f} s")


class Process:
    """A child process in its own process group, stopped by its id."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None):
        self.log = log
        self.handle = open(log, "w")
        self.process = subprocess.Popen(args, stdout=self.handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.handle.close()


def run_syncline(syncline: Path, args: list[str], log: Path, env: dict):
    result = subprocess.run([str(syncline), *args], capture_output=True, text=True, env=env, timeout=600)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise CheckError(f"`syncline {' '.join(args)}` failed ({result.returncode}); output in {log}:\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout


SIM_WEBHOOK_AUTH = {
    "pipedrive": 'verify = { type = "basic", username = "sim-webhook-user", password = "sim-webhook-password" }',
    "halopsa": 'verify = { type = "basic", username = "sim-halo-webhook-user", password = "sim-halo-webhook-password" }',
}


def syncline_config(connector: str, credentials: dict, work: Path, listen: str) -> str:
    if connector == "pipedrive":
        auth = f'auth = {{ type = "api_token", token = "{credentials["api_token"]}" }}'
    else:
        auth = (
            f'auth = {{ type = "client_credentials", token_url = "{credentials["token_url"]}", '
            f'client_id = "{credentials["client_id"]}", client_secret = "{credentials["client_secret"]}", scope = "all" }}'
        )
    return f"""
[destination]
url = "duckdb://{work}/warehouse.duckdb"
[state]
url = "sqlite://{work}/state.db"
[server]
listen = "{listen}"
scheduler = false
[sources.{connector}]
connector = "{connector}"
base_url = "{credentials["api_base_url"]}"
{auth}
retry = {{ max_attempts = 3, base_delay_ms = 10 }}
[sources.{connector}.webhook]
{SIM_WEBHOOK_AUTH[connector]}
"""


def exercise(connector: str, syncline: Path, work: Path, changes: int, seed: int) -> list[dict]:
    """Runs the connector against a fresh simulator the ways production does; returns the
    simulator's request log."""
    sim_port, serve_port = free_port(), free_port()
    sim_config = work / "simulator.json"
    sim_config.write_text(json.dumps({"connector": connector, "seed": seed, "request_log_limit": 200000, "webhooks": {"retry_scale": 0.001}}))
    env = {**os.environ, "RUST_LOG": "warn"}
    simulator = Process(
        [str(syncline), "simulate", connector, "--config", str(sim_config), "--port", str(sim_port), "--manual-clock", "--changes-per-second", "0"],
        work / "simulator.log",
        env,
    )
    serve = None
    try:
        sim = f"http://127.0.0.1:{sim_port}"
        wait_for(f"{sim}/_sim/health", 30, "the simulator")
        credentials = http("GET", f"{sim}/_sim/credentials")
        config = work / "syncline.toml"
        config.write_text(syncline_config(connector, credentials, work, f"127.0.0.1:{serve_port}"))
        run_syncline(syncline, ["sync", "--config", str(config), "--mode", "full"], work / "sync-full.log", env)
        http("POST", f"{sim}/_sim/clock/advance?seconds=60")
        http("POST", f"{sim}/_sim/changes/step?count={changes}")
        http("POST", f"{sim}/_sim/clock/advance?seconds=60")
        run_syncline(syncline, ["sync", "--config", str(config), "--mode", "incremental"], work / "sync-incremental.log", env)
        # Webhooks: the server's worker re-fetches each changed record by id.
        serve = Process([str(syncline), "serve", "--config", str(config)], work / "serve.log", env)
        wait_for(f"http://127.0.0.1:{serve_port}/healthz", 60, "syncline serve")
        http("POST", f"{sim}/_sim/webhooks/target", {"url": f"http://127.0.0.1:{serve_port}/webhooks/{connector}"})
        http("POST", f"{sim}/_sim/changes/step?count={changes}")
        http("POST", f"{sim}/_sim/webhooks/flush", timeout=120)
        wait_inbox_empty(f"http://127.0.0.1:{serve_port}/metrics", 60)
        log = http("GET", f"{sim}/_sim/requests", timeout=120)
        if log["dropped"]:
            raise CheckError(f"the simulator's request log dropped {log['dropped']} entries; raise request_log_limit")
        stats = http("GET", f"{sim}/_sim/stats")
        webhooks = stats["webhooks"]
        if webhooks.get("delivered", 0) == 0:
            raise CheckError(f"no webhook reached syncline serve ({webhooks}); see {work / 'serve.log'}")
        return log["requests"]
    finally:
        if serve:
            serve.stop()
        simulator.stop()


def wait_inbox_empty(metrics_url: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
        depth = re.search(r"^syncline_inbox_depth(?:\{[^}]*\})? (\S+)$", text, re.M)
        if depth and float(depth.group(1)) == 0:
            return
        time.sleep(0.3)
    raise CheckError(f"the inbox of syncline serve did not drain within {seconds:.0f} s")


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class Violation:
    vendor: str
    operation: str
    kind: str
    where: str
    detail: str
    requests: int = 1


def validate(vendor: str, specs: list[Spec], requests: list[dict]) -> tuple[list[Violation], dict]:
    violations: dict[tuple, Violation] = {}
    used: dict[str, int] = {}
    validators: dict[tuple, jsonschema.Draft4Validator] = {}

    def report(operation: str, kind: str, where: str, detail: str):
        key = (operation, kind, where, detail)
        if key in violations:
            violations[key].requests += 1
        else:
            violations[key] = Violation(vendor, operation, kind, where, detail)

    for entry in requests:
        method, path = entry["method"], entry["path"]
        spec, operation = None, None
        for candidate in specs:
            operation = candidate.find(method, path)
            if operation:
                spec = candidate
                break
        if operation is None:
            report(f"{method} {entry['endpoint']}", "operation", "-", "no operation of the vendor's spec matches this path and method")
            continue
        label = f"{method} {spec.name}{operation.path}"
        used[label] = used.get(label, 0) + 1
        for name, value in entry["query"]:
            if name in spec.security_query_params:
                continue
            override = type_override(vendor, operation, name)
            if name in operation.parameters:
                schema = {"type": override} if override else operation.parameters[name]
                problem = parameter_value_problem(value, schema, operation.parameter_descriptions.get(name, ""))
                if problem:
                    report(label, "parameter value", name, problem)
            elif allowlisted(vendor, operation, name):
                continue
            else:
                report(label, "parameter", name, f"not documented for this operation (sent {value!r})")
        if not 200 <= entry["status"] < 300:
            continue
        opted_in = frozenset()
        if spec.name == "halopsa":
            base = "/" + operation.path.strip("/").split("/")[0]
            opted_in = halo_opted_in(base, entry["query"])
            schema = halo_response_schema(spec, operation, path, entry["query"])
        else:
            schema = operation.response_schema
        if schema is None:
            report(label, "response", "-", "the spec gives no response schema to check against")
            continue
        key = (spec.name, operation.path, operation.method, opted_in)
        if key not in validators:
            validators[key] = jsonschema.Draft4Validator(schema)
        for error in validators[key].iter_errors(entry["body"]):
            where = "/".join(str(part) for part in error.absolute_path)
            where = re.sub(r"/\d+(?=/|$)", "/*", "/" + where) if where else "/"
            report(label, "response", where, short_message(error))
    return list(violations.values()), used


def short_message(error) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed ", "field not in the schema: ")
    if error.validator == "type":
        return f"{json.dumps(error.instance)[:60]} is not of type {error.validator_value}"
    return error.message[:160]


def print_table(violations: list[Violation]):
    rows = [("vendor", "operation", "kind", "where", "violation", "requests")]
    rows += [(v.vendor, v.operation, v.kind, v.where, v.detail, str(v.requests)) for v in sorted(violations, key=lambda v: (v.vendor, v.operation, v.kind, v.where))]
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
        print("  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syncline", type=Path, default=Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "syncline")
    parser.add_argument("--vendor-dir", type=Path, default=Path(os.environ.get("SYNCLINE_VENDOR_DIR", SHARED / "vendor")))
    parser.add_argument("--fixtures-dir", type=Path, default=Path(os.environ.get("SYNCLINE_FIXTURES", SHARED / "fixtures")))
    parser.add_argument("--connector", action="append", choices=["pipedrive", "halopsa"], help="default: both")
    parser.add_argument("--changes", type=int, default=40, help="upstream changes before the incremental run and again for the webhooks")
    parser.add_argument("--seed", type=int, default=13, help="simulator seed (records, changes)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, request log)")
    args = parser.parse_args()

    if not args.syncline.is_file():
        print(f"contract check: no syncline binary at {args.syncline}; run cargo build --release --workspace first", file=sys.stderr)
        return 2
    vendor_dir = args.vendor_dir
    problems = check_allowlist(vendor_dir)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    connectors = args.connector or ["pipedrive", "halopsa"]
    all_violations = []
    work_root = Path(tempfile.mkdtemp(prefix="syncline-contract-"))
    try:
        for connector in connectors:
            if connector == "pipedrive":
                specs = [
                    load_spec("pipedrive", "v2", vendor_dir / "pipedrive" / "openapi-v2.yaml", "/api/v2"),
                    load_spec("pipedrive", "v1", vendor_dir / "pipedrive" / "openapi-v1.yaml", "/api/v1"),
                ]
            else:
                specs = [load_spec("halopsa", "halopsa", vendor_dir / "halopsa" / "swagger.json", "/api")]
                problems = apply_response_fields(specs[0], "halopsa", args.fixtures_dir)
                if problems:
                    print("\n".join(problems), file=sys.stderr)
                    return 1
            work = work_root / connector
            work.mkdir()
            requests = exercise(connector, args.syncline, work, args.changes, args.seed)
            (work / "requests.json").write_text(json.dumps(requests))
            violations, used = validate(connector, specs, requests)
            print(f"== {connector}: {len(requests)} requests served, operations used:")
            for label, count in sorted(used.items()):
                print(f"   {count:6d}  {label}")
            all_violations += violations
    except CheckError as error:
        print(f"contract check could not run: {error}", file=sys.stderr)
        print(f"(work folder kept: {work_root})", file=sys.stderr)
        return 2
    if all_violations:
        print(f"\n{len(all_violations)} contract violations (simulator responses or connector parameters against the vendors' specs):\n")
        print_table(all_violations)
        print(f"\nwork folder kept: {work_root}")
        return 1
    print("\ncontract check: every response validates and every parameter is documented")
    if args.keep:
        print(f"work folder: {work_root}")
    else:
        shutil.rmtree(work_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
