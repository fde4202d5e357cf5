"""schemathesis against /api/v1/openapi.json: every operation, generated inputs (valid and not),
no server error and no response outside the document.

Each valid example runs twice: as generated (random ids: mostly 404s), and with the ids of a real
conversation and its messages put in, so the 200 paths are exercised too. Invalid examples
(schemathesis' negative mode) run as generated, with a real token unless auth is what they break.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from webchat import create_app
from webchat.auth import services as accounts
from webchat.extensions import db
from webchat.seed import seed

from .conftest import BASE_CONFIG, wait_for_runs
from .test_api import api_token

EXAMPLES = int(os.environ.get("WEBCHAT_SCHEMATHESIS_EXAMPLES", "25"))  # per operation


def _document_app():
    """An app that only serves the document (it never opens its database): the schema is loaded
    once, at collection; each test sends its requests to its own app on its own database."""
    folder = tempfile.mkdtemp(prefix="webchat-openapi-")
    return create_app(
        {
            **BASE_CONFIG,
            "DATABASE_URL": f"sqlite:///{folder}/unused.sqlite3",
            "INSTANCE_PATH": folder,
        }
    )


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _document_app())


@pytest.fixture
def owner(app):
    """A token, and ids of the owner's conversation with messages (a finished reply included)."""
    token = api_token(app)
    with app.app_context():
        user = accounts.find_user("ada@example.com")
        (cid,) = seed(user, messages=30)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    sent = client.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "hello"}, headers=headers
    ).get_json()
    wait_for_runs(app)
    return {
        "token": token,
        "conversation_id": str(cid),
        "message_id": sent["reply"]["id"],
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_matches_its_document(case, app, owner):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    # A valid token in place of a well-formed random one keeps a case as valid or invalid as it
    # was; a missing or malformed Authorization (a negative case about auth) is sent as it is.
    generated = (case.headers or {}).get("Authorization", "")
    # schemathesis asks for gzip like requests does, but its WSGI transport reads the body as it
    # comes; compression has its own tests (test_compression), so these bodies come plain.
    headers = {"Accept-Encoding": "identity"}
    if positive or generated.startswith("Bearer "):
        headers["Authorization"] = f"Bearer {owner['token']}"
    # Some inputs are judged beyond what the document can say: an upload's bytes by their content
    # (random bytes are a documented 400, "this kind of file can't be attached"), and a share
    # link's expiry against the clock (a past date is a documented 400).
    judged = {
        "/api/v1/files",
        "/api/v1/conversations/{conversation_id}/shares",
        "/api/v1/shares/{share_id}",
    }
    excluded = [positive_data_acceptance] if case.path in judged else []
    case.call_and_validate(app=app, headers=headers, excluded_checks=excluded)
    real = {k: owner[k] for k in ("conversation_id", "message_id") if k in case.path_parameters}
    if positive and real:
        case.path_parameters.update(real)
        case.call_and_validate(app=app, headers=headers, excluded_checks=excluded)
    wait_for_runs(app)
