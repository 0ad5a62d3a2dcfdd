"""The API fuzzed with schemathesis against its own OpenAPI document (over WSGI, in process).

Every operation is called with generated input and a valid token: no answer may be a server
error, and every answer must match the status codes, content type and schema the document
declares. The number of examples is bounded so the run stays short and repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.security import issue_api_token
from solver import SolveParams
from tests.dispatch.builders import Graph

#: Examples generated per operation (and per database backend).
EXAMPLES = 12
#: Operations a technician performs; the others are the dispatcher's.
TECHNICIAN_PATHS = ("/status", "/record")

CHECKS = [not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzz_schema(app: Flask, session: Session, graph: Graph) -> OpenApiSchema:
    """The app's own OpenAPI document, loaded over WSGI; solves run in the request, briefly."""
    app.config["API_SOLVE_IN_BACKGROUND"] = False
    app.config["API_SOLVE_PARAMS"] = SolveParams(time_limit=None, solution_limit=5,
                                                 use_pyvrp=False)
    disp = session.query(m.User).filter_by(username="disp").one()
    app.config["FUZZ_TOKENS"] = {"dispatcher": issue_api_token(session, disp, "fuzz"),
                                 "technician": issue_api_token(session, graph.user, "fuzz")}
    session.commit()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_api_conforms_to_its_document(fuzz_schema: OpenApiSchema, app: Flask) -> None:
    """Generated calls never get a 5xx and every answer conforms to the OpenAPI document."""
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        _fuzz(operation, app.config["FUZZ_TOKENS"])


def _fuzz(operation: APIOperation, tokens: dict[str, str]) -> None:
    # pytest-9 breaks schemathesis' own pytest plugin, so each operation runs its own
    # hypothesis test here; a failure names the operation and the failing case.
    role = "technician" if operation.path.endswith(TECHNICIAN_PATHS) else "dispatcher"
    headers = {"Authorization": f"Bearer {tokens[role]}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
