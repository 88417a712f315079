"""Property-based run of the whole API against its own OpenAPI document (Schemathesis).

Signed in as an administrator, generated requests for every operation — valid ones
and deliberately invalid ones — must never produce a 5xx, and every response must
match the documented status codes, content types and schemas.  The live stream is
left out (an endless response; test_api_live.py covers it).  Examples per operation
are bounded so the run stays well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carecircle.platform.api.app import create_app
from carecircle.platform.settings import PlatformSettings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 8
SKIP = {("GET", "/api/v1/live")}

# The operations, read from the app's OpenAPI document (building the app connects nowhere).
_DOC = create_app(PlatformSettings(demo_mode=True), dashboard=False).openapi()
OPERATIONS = sorted(
    (method.upper(), path, mode)
    for path, ops in _DOC["paths"].items()
    for method, op in ops.items()
    if (method.upper(), path) not in SKIP
    # negative cases need something to get wrong: a parameter or a body
    for mode in (
        ("positive", "negative") if op.get("parameters") or op.get("requestBody") else ("positive",)
    )
)


@pytest.fixture(scope="module")
def api_schema(api: TestClient) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.app)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_operation_conforms_to_the_schema(
    api_schema: Any, tokens: dict[str, dict[str, str]], method: str, path: str, mode: str
) -> None:
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=tokens["admin"], checks=CHECKS)

    run()
