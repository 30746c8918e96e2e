"""The OpenAPI document against the real server: schemathesis generates requests from it
and checks every response (no 5xx; status, content type, headers and body as documented)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PROJECT_ROOT

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_server(server_factory):
    # TURN configured (no relay needed: the answer is only signed), so GET /api/turn's full shape is checked.
    return server_factory(METRICS="open", TURN_SECRET="openapi-test-secret", TURN_URLS="turn:turn.example:3478",
                          STUN_URLS="stun:turn.example:3478")  # fmt: skip


@pytest.fixture(scope="module")
def api_schema(api_server):
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/openapi.json")
    schema.config.update(base_url=api_server.url)
    return schema


def test_api_conforms_to_its_openapi_document(api_schema):
    """Every operation, with generated valid and boundary inputs.

    Driven by Hypothesis directly: schemathesis's pytest plugin (4.32) does not work with
    pytest 9 (`'Function' object has no attribute '_nodeid'`)."""
    failures, calls = [], []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            calls.append(case.call_and_validate(checks=CHECKS, timeout=60).status_code)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    print(sorted(Counter(calls).items()))
    assert len(calls) > 100 and 200 in calls


def test_served_document_is_the_file_in_the_repo(api_server):
    served = httpx.get(f"{api_server.url}/api/openapi.json", timeout=30).json()
    assert served == yaml.safe_load((PROJECT_ROOT / "docs" / "openapi.yaml").read_text())
    assert served["openapi"].startswith("3.1")


def test_docs_page_and_its_assets_are_served_locally(api_server):
    page = httpx.get(f"{api_server.url}/api/docs", timeout=30)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text  # nothing from a CDN
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"), ("swagger-ui-init.js", "javascript")):
        response = httpx.get(f"{api_server.url}/api/docs/{asset}", timeout=30)
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert httpx.get(f"{api_server.url}/api/docs/../settings.py", timeout=30).status_code == 404
    assert httpx.get(f"{api_server.url}/api/docs/oauth2-redirect.html", timeout=30).status_code == 404


def test_asyncapi_document_covers_every_contract_event():
    doc = yaml.safe_load((PROJECT_ROOT / "docs" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    names = {message["name"] for message in doc["components"]["messages"].values()}
    events_in = {"join_room", "leave_room", "send_message", "send_voice_message", "send_image_message",
                 "delete_message", "join_call", "leave_call", "offer", "answer", "ice_candidate"}
    events_out = {"online_users", "receive_message", "receive_voice_message", "receive_image_message",
                  "message_deleted", "call_notification", "user_joined_call", "call_participants",
                  "call_ended_notification", "user_left_call"}
    assert events_in | events_out <= names
    for operation in doc["operations"].values():
        for ref in operation.get("messages", []):
            _resolve(doc, ref["$ref"])
        _resolve(doc, operation["channel"]["$ref"])


def _resolve(doc, ref: str):
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node
