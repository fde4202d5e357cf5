"""The JSON API v1: each route's statuses and bodies, its errors, auth, ownership, the stream."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from sqlalchemy import func, select

from webchat.api import tokens
from webchat.auth import services as accounts
from webchat.extensions import db
from webchat.models import Conversation, Message, Run
from webchat.providers import register
from webchat.providers.base import Finish, TextDelta
from webchat.providers.demo import DemoProvider

from .conftest import csrf_token, parse_sse, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider

API = "/api/v1"


def api_token(app, email: str = "ada@example.com") -> str:
    """Create an account and an API token for it; returns the token."""
    with app.app_context():
        user = accounts.create_user(email, "correct horse")
        _row, token = tokens.create_token(user, "tests")
        db.session.commit()
    return token


class Api:
    """A test client of the API that sends ``Authorization: Bearer <token>``."""

    def __init__(self, app, token: str) -> None:
        self.client = app.test_client()
        self.token = token

    def open(self, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.client.open(API + path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw):
        return self.open("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.open("POST", path, **kw)

    def patch(self, path: str, **kw):
        return self.open("PATCH", path, **kw)

    def put(self, path: str, **kw):
        return self.open("PUT", path, **kw)

    def delete(self, path: str, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture
def api(app):
    return Api(app, api_token(app))


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """The response is the API's error body with ``status`` and ``code`` (and ``field`` at
    fault); returns the ``error`` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) <= {"code", "message", "details"}
    if field is not None:
        assert field in error["details"]["fields"], error
    return error


def new_conversation(api: Api, **body) -> dict:
    response = api.post("/conversations", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def send(api: Api, conversation_id: str, content: str = "Hello", **body):
    return api.post(f"/conversations/{conversation_id}/messages", json={"content": content, **body})


def test_requests_without_credentials_are_401(app, api):
    client = app.test_client()
    response = client.get(f"{API}/conversations")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get(f"{API}/conversations", headers={"Authorization": "Bearer wc_nope"})
    assert_error(bad, 401, "invalid_token")
    basic = client.get(f"{API}/conversations", headers={"Authorization": "Basic YTpi"})
    assert_error(basic, 401, "invalid_token")
    assert api.get("/conversations").status_code == 200
    # the document is public
    assert client.get(f"{API}/openapi.json").status_code == 200


def test_revoked_token_stops_working_and_use_is_recorded(app, api):
    assert api.get("/models").status_code == 200
    with app.app_context():
        row = db.session.scalars(select(tokens.ApiToken)).one()
        assert row.last_used_at is not None
        tokens.revoke(row)
        db.session.commit()
    assert_error(api.get("/models"), 401, "invalid_token")


def test_conversation_lifecycle(app, api):
    created = new_conversation(
        api, title="  Plans  ", system_prompt="Be brief.", metadata={"project": "x", "n": 2}
    )
    assert created["title"] == "Plans" and created["system_prompt"] == "Be brief."
    assert created["metadata"] == {"project": "x", "n": 2}
    assert created["model"] == "demo/echo" and created["message_count"] == 0
    assert created["created_at"].endswith("Z") and not created["archived"]
    cid = created["id"]

    shown = api.get(f"/conversations/{cid}").get_json()
    assert shown["messages"] == [] and shown["has_more"] is False and shown["next_cursor"] is None

    patched = api.patch(
        f"/conversations/{cid}",
        json={"title": "Renamed", "pinned": True, "archived": True, "metadata": {"k": [1]}},
    )
    assert patched.status_code == 200
    body = patched.get_json()
    assert (body["title"], body["pinned"], body["archived"]) == ("Renamed", True, True)
    assert body["archived_at"].endswith("Z") and body["metadata"] == {"k": [1]}
    # fields left out stay; null removes the system prompt
    body = api.patch(f"/conversations/{cid}", json={"system_prompt": None}).get_json()
    assert body["title"] == "Renamed" and body["system_prompt"] is None and body["pinned"]
    body = api.patch(f"/conversations/{cid}", json={"archived": False}).get_json()
    assert body["archived"] is False and body["archived_at"] is None

    assert api.delete(f"/conversations/{cid}").status_code == 204
    assert_error(api.get(f"/conversations/{cid}"), 404, "not_found")
    assert_error(api.delete(f"/conversations/{cid}"), 404, "not_found")


def test_delete_takes_the_messages_with_it(app, api):
    cid = new_conversation(api)["id"]
    assert send(api, cid).status_code == 202
    wait_for_runs(app)
    assert api.delete(f"/conversations/{cid}").status_code == 204
    with app.app_context():
        left = db.session.scalar(
            select(func.count(Message.id)).where(Message.conversation_id == uuid.UUID(cid))
        )
        runs = db.session.scalar(
            select(func.count(Run.id)).where(Run.conversation_id == uuid.UUID(cid))
        )
    assert (left, runs) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"model": "nowhere/none"}, "model"),
        ({"metadata": []}, "metadata"),
        ({"colour": "red"}, "colour"),
        ({"title": "bad\x00byte"}, "title"),
        ({"metadata": {"k": "bad\x00byte"}}, "metadata"),
    ],
)
def test_create_rejects_invalid_fields(api, body, field):
    assert_error(api.post("/conversations", json=body), 400, "invalid_input", field)


def test_bodies_must_be_json(api):
    response = api.post("/conversations", data="title=x", content_type="text/plain")
    assert_error(response, 400, "invalid_input")
    response = api.post("/conversations", data="{oops", content_type="application/json")
    assert_error(response, 400, "invalid_input")
    cid = new_conversation(api)["id"]
    response = api.patch(f"/conversations/{cid}", json={"pinned": "maybe"})
    assert_error(response, 400, "invalid_input", "pinned")
    response = api.patch(f"/conversations/{cid}", json={"title": "   "})
    assert_error(response, 400, "invalid_input", "title")


def test_list_conversations_pages_with_a_cursor(api):
    ids = [new_conversation(api, title=f"c{i}")["id"] for i in range(5)]
    api.patch(f"/conversations/{ids[0]}", json={"pinned": True})
    api.patch(f"/conversations/{ids[1]}", json={"archived": True})
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/conversations", query_string=query).get_json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # pinned first, then newest activity first; the archived one is listed apart
    assert seen == [ids[0], ids[4], ids[3], ids[2]]
    archived = api.get("/conversations", query_string={"archived": "true"}).get_json()
    assert [c["id"] for c in archived["items"]] == [ids[1]]
    assert_error(api.get("/conversations?cursor=garbage"), 400, "invalid_input", "cursor")
    assert_error(api.get("/conversations?limit=201"), 400, "invalid_input", "limit")


def test_send_message_returns_202_then_streams_json(app, api):
    cid = new_conversation(api)["id"]
    response = send(api, cid, "Hi *there*")
    assert response.status_code == 202
    body = response.get_json()
    message, reply = body["message"], body["reply"]
    assert (message["role"], message["content"], message["status"]) == (
        "user",
        "Hi *there*",
        "complete",
    )
    assert reply["role"] == "assistant" and reply["status"] in ("pending", "streaming", "complete")
    assert reply["parent_id"] == message["id"] and reply["conversation_id"] == cid
    assert body["stream_url"] == f"{API}/messages/{reply['id']}/stream"

    stream = api.client.get(body["stream_url"], headers={"Authorization": f"Bearer {api.token}"})
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    events = parse_sse(stream.get_data(as_text=True))
    assert [e["event"] for e in events if e["event"] != "delta"] == ["done"]
    text = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "delta")
    done = json.loads(events[-1]["data"])
    assert done["status"] == "complete" and done["message"]["id"] == reply["id"]
    assert done["message"]["content"] == text == DemoProvider().reply_text("Hi *there*")
    assert events[-1]["id"] == f"{reply['id']}:end"

    stored = api.get(f"/messages/{reply['id']}").get_json()
    assert stored["status"] == "complete" and stored["content"] == text
    assert stored["metadata"]["model"] == "demo/echo"
    page = api.get(f"/conversations/{cid}").get_json()
    assert [m["id"] for m in page["messages"]] == [message["id"], reply["id"]]
    assert page["message_count"] == 2


def test_stream_resumes_from_last_event_id_without_repeating(app, api):
    cid = new_conversation(api)["id"]
    reply = send(api, cid, "/long 300").get_json()["reply"]
    wait_for_runs(app)
    content = api.get(f"/messages/{reply['id']}").get_json()["content"]
    body = api.get(
        f"/messages/{reply['id']}/stream", headers={"Last-Event-ID": f"{reply['id']}:120"}
    ).get_data(as_text=True)
    events = parse_sse(body)
    assert "snapshot" not in {e["event"] for e in events}  # programs get exact deltas
    rest = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "delta")
    assert content[:120] + rest == content
    # the same event ids as the page's stream (which starts with a snapshot instead)
    browser = app.test_client()
    token = csrf_token(browser, "/login")
    browser.post(
        "/login",
        data={"email": "ada@example.com", "password": "correct horse", "csrf_token": token},
    )
    page = parse_sse(browser.get(f"/m/{reply['id']}/stream").get_data(as_text=True))
    assert (
        page[-1]["event"] == "done" and page[-1]["id"] == events[-1]["id"] == f"{reply['id']}:end"
    )
    resumed = parse_sse(
        browser.get(
            f"/m/{reply['id']}/stream", headers={"Last-Event-ID": f"{reply['id']}:120"}
        ).get_data(as_text=True)
    )
    assert [e["id"] for e in resumed][-1] == events[-1]["id"]


def test_stream_of_a_user_message_is_404(app, api):
    cid = new_conversation(api)["id"]
    message = send(api, cid).get_json()["message"]
    wait_for_runs(app)
    assert_error(api.get(f"/messages/{message['id']}/stream"), 404, "not_found")


def test_sending_while_a_reply_runs_is_409_and_cancel_stops_it(app, api):
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(TextDelta("Slow "), 0.6, TextDelta("reply"), Finish("stop"))
    cid = new_conversation(api, model="fake/model")["id"]
    reply = send(api, cid, "first").get_json()["reply"]
    assert_error(send(api, cid, "second"), 409, "conflict")
    response = api.post(f"/messages/{reply['id']}/cancel")
    assert response.status_code == 202
    assert response.get_json()["message"]["id"] == reply["id"]
    wait_for_runs(app)
    stored = api.get(f"/messages/{reply['id']}").get_json()
    assert stored["status"] == "cancelled"
    assert_error(api.post(f"/messages/{reply['id']}/cancel"), 409, "conflict")
    user_message = api.get(f"/conversations/{cid}").get_json()["messages"][0]
    assert_error(api.post(f"/messages/{user_message['id']}/cancel"), 409, "conflict")


def test_send_validation_and_sizes(make_app):
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024, MAX_MESSAGE_CHARS=1000)
    api = Api(app, api_token(app))
    cid = new_conversation(api)["id"]
    assert_error(send(api, cid, "   "), 400, "invalid_input", "content")
    assert_error(
        api.post(f"/conversations/{cid}/messages", json={}), 400, "invalid_input", "content"
    )
    assert_error(send(api, cid, "hi", model="nowhere/none"), 400, "invalid_input", "model")
    assert_error(send(api, cid, "x" * 1001), 413, "too_large", "content")
    huge = {"content": "x" * (70 * 1024)}
    assert_error(api.post(f"/conversations/{cid}/messages", json=huge), 413, "too_large")
    assert_error(api.post("/conversations", json={"metadata": huge}), 413, "too_large")
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 0


def test_unknown_routes_and_methods_answer_json(api):
    assert_error(api.get("/nothing-here"), 404, "not_found")
    response = api.open("PUT", "/conversations")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(api.get("/conversations/not-a-uuid"), 404, "not_found")


def test_models(api):
    body = api.get("/models").get_json()
    assert {"id": "demo/echo", "provider": "demo", "images": True} in body["items"]
    assert body["default"] == "demo/echo"


def own_server_id(app, email: str) -> int:
    """The id of a tool server the user ``email`` added (stored directly: no host is allowed
    in these tests)."""
    from webchat.models import McpServer, User

    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        row = McpServer(user_id=user.id, name="mine", url="http://127.0.0.1:9/mcp")
        db.session.add(row)
        db.session.commit()
        return row.id


def test_other_users_ids_are_404_on_every_route(app, api):
    cid = new_conversation(api, title="mine")["id"]
    sent = send(api, cid, "secret").get_json()
    wait_for_runs(app)
    mid, rid = sent["message"]["id"], sent["reply"]["id"]
    file_id = api.post(
        "/files", data={"file": (io.BytesIO(b"secret notes"), "notes.txt")},
        content_type="multipart/form-data",
    ).get_json()["id"]  # fmt: skip
    other = Api(app, api_token(app, "bob@example.com"))
    own = new_conversation(other)["id"]
    theirs = send(other, own, "mine").get_json()["message"]["id"]
    wait_for_runs(app)
    pid = api.post("/projects", json={"name": "Mine"}).get_json()["id"]
    api.patch(f"/conversations/{cid}", json={"project_id": pid, "tags": ["secret"]})
    share_id = api.post(f"/conversations/{cid}/shares", json={}).get_json()["id"]
    with app.app_context():
        before = db.session.execute(select(Message.id, Message.content, Message.parent_id)).all()
        conversations = db.session.execute(select(Conversation)).scalars().all()
        before_conversations = {
            (c.id, c.title, c.active_message_id, c.project_id) for c in conversations
        }
    checks = [
        other.get(f"/conversations/{cid}"),
        other.patch(f"/conversations/{cid}", json={"title": "theirs"}),
        other.delete(f"/conversations/{cid}"),
        other.get(f"/conversations/{cid}/messages"),
        other.get(f"/conversations/{cid}/messages", query_string={"leaf": mid}),
        other.get(f"/conversations/{cid}/messages", query_string={"all": "true"}),
        send(other, cid, "intrusion"),
        other.post(f"/conversations/{cid}/active", json={"message_id": mid}),
        other.get(f"/messages/{mid}"),
        other.get(f"/messages/{rid}"),
        other.get(f"/messages/{rid}/stream"),
        other.post(f"/messages/{rid}/cancel"),
        other.post(f"/messages/{mid}/edit", json={"content": "rewritten"}),
        other.post(f"/messages/{rid}/edit", json={"content": "rewritten"}),
        other.post(f"/messages/{mid}/regenerate"),
        other.post(f"/messages/{rid}/regenerate", json={}),
        other.post(f"/messages/{rid}/fork"),
        other.put(f"/messages/{rid}/feedback", json={"rating": "down"}),
        other.post(f"/messages/{rid}/approval", json={"decision": "allow"}),
        other.delete(f"/tool-servers/{own_server_id(app, 'ada@example.com')}"),
        other.patch(f"/conversations/{cid}", json={"tools": []}),
        other.get(f"/files/{file_id}"),
        send(other, own, "with your file", files=[file_id]),
        # the owner's ids inside the other user's own conversation are no way in either
        send(other, own, "graft", parent_id=rid),
        other.post(f"/conversations/{own}/active", json={"message_id": rid}),
        other.get(f"/conversations/{own}/messages", query_string={"after": mid}),
        other.get(f"/conversations/{own}/messages", query_string={"before": mid}),
        other.get(f"/conversations/{own}/messages", query_string={"leaf": mid}),
        other.get(f"/conversations/{own}/messages", query_string={"all": "true", "after": mid}),
        # projects, tags and share links (issue 15)
        other.get(f"/projects/{pid}"),
        other.patch(f"/projects/{pid}", json={"name": "theirs"}),
        other.delete(f"/projects/{pid}"),
        other.get("/conversations", query_string={"project_id": pid}),
        other.get("/conversations", query_string={"tag": "secret"}),
        other.post("/conversations", json={"project_id": pid}),
        other.patch(f"/conversations/{own}", json={"project_id": pid}),
        other.post(f"/conversations/{cid}/shares", json={}),
        other.patch(f"/shares/{share_id}", json={"refresh": True}),
        other.delete(f"/shares/{share_id}"),
        other.get("/search", query_string={"q": "secret", "project": pid}),
        other.get("/search", query_string={"q": "secret", "tag": "secret"}),
    ]
    for response in checks:
        assert_error(response, 404, "not_found")
    # the gateway (/v1, tests/test_gateway.py): the owner's conversation pinned by another user
    pinned = {"Authorization": f"Bearer {other.token}", "X-Webchat-Conversation": cid}
    ask = {"model": "demo/echo", "messages": [{"role": "user", "content": "intrusion"}]}
    gateway = other.client.post("/v1/chat/completions", json=ask, headers=pinned)
    assert gateway.status_code == 404 and gateway.get_json()["error"]["code"] == "not_found"
    gateway = other.client.post("/v1/messages", json={**ask, "max_tokens": 9}, headers=pinned)
    assert gateway.status_code == 404
    assert gateway.get_json()["error"]["type"] == "not_found_error"
    # the file's bytes (a page route, reached with the token too)
    bearer = {"Authorization": f"Bearer {other.token}"}
    assert other.client.get(f"/files/{file_id}", headers=bearer).status_code == 404
    mine = {"Authorization": f"Bearer {api.token}"}
    assert api.client.get(f"/files/{file_id}", headers=mine).status_code == 200
    assert [c["id"] for c in other.get("/conversations").get_json()["items"]] == [own]
    # nothing of the owner's (or anyone's) changed
    mine = api.get(f"/conversations/{cid}").get_json()
    assert mine["title"] == "mine" and len(mine["messages"]) == 2
    assert mine["tags"] == ["secret"] and mine["project_id"] == pid
    assert api.get(f"/projects/{pid}").get_json()["name"] == "Mine"
    assert [s["id"] for s in api.get("/shares").get_json()["items"]] == [share_id]
    with app.app_context():
        assert (
            db.session.execute(select(Message.id, Message.content, Message.parent_id)).all()
            == before
        )
        conversations = db.session.execute(select(Conversation)).scalars().all()
        assert {
            (c.id, c.title, c.active_message_id, c.project_id) for c in conversations
        } == before_conversations
    # and the other user's own routes work with their own ids
    assert (
        other.get(f"/conversations/{own}/messages", query_string={"leaf": theirs}).status_code
        == 200
    )


def test_browser_session_works_same_origin_with_csrf(app, client):
    sign_up(client)
    assert client.get(f"{API}/conversations").status_code == 200
    refused = client.post(f"{API}/conversations", json={"title": "no token"})
    assert_error(refused, 400, "csrf_failed")
    token = csrf_token(client, "/")
    created = client.post(
        f"{API}/conversations", json={"title": "with token"}, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201
    with app.app_context():
        titles = db.session.scalars(select(Conversation.title)).all()
    assert titles == ["with token"]
    # a bearer call needs no CSRF token, and a bad bearer is not rescued by the session
    bad = client.get(f"{API}/conversations", headers={"Authorization": "Bearer wc_wrong"})
    assert_error(bad, 401, "invalid_token")


def test_openapi_document_lists_every_route(client):
    document = client.get(f"{API}/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    expected = {
        ("/api/v1/conversations", "get"),
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations/{conversation_id}", "get"),
        ("/api/v1/conversations/{conversation_id}", "patch"),
        ("/api/v1/conversations/{conversation_id}", "delete"),
        ("/api/v1/conversations/{conversation_id}/messages", "get"),
        ("/api/v1/conversations/{conversation_id}/messages", "post"),
        ("/api/v1/messages/{message_id}", "get"),
        ("/api/v1/messages/{message_id}/stream", "get"),
        ("/api/v1/messages/{message_id}/cancel", "post"),
        ("/api/v1/messages/{message_id}/edit", "post"),
        ("/api/v1/messages/{message_id}/regenerate", "post"),
        ("/api/v1/messages/{message_id}/fork", "post"),
        ("/api/v1/messages/{message_id}/feedback", "put"),
        ("/api/v1/messages/{message_id}/approval", "post"),
        ("/api/v1/tool-servers", "get"),
        ("/api/v1/tool-servers", "post"),
        ("/api/v1/tool-servers/{server_id}", "delete"),
        ("/api/v1/conversations/{conversation_id}/active", "post"),
        ("/api/v1/models", "get"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects", "post"),
        ("/api/v1/projects/{project_id}", "get"),
        ("/api/v1/projects/{project_id}", "patch"),
        ("/api/v1/projects/{project_id}", "delete"),
        ("/api/v1/conversations/{conversation_id}/shares", "post"),
        ("/api/v1/shares", "get"),
        ("/api/v1/shares/{share_id}", "patch"),
        ("/api/v1/shares/{share_id}", "delete"),
        ("/api/v1/shared/{share_id}", "get"),
        ("/api/v1/files", "post"),
        ("/api/v1/files/{file_id}", "get"),
    }
    assert expected <= {(p, m) for p, ops in paths.items() for m in ops}
    edit = paths["/api/v1/messages/{message_id}/edit"]["post"]["responses"]
    assert {"201", "202", "400", "404", "409", "413"} <= set(edit)
    listing = paths["/api/v1/conversations/{conversation_id}/messages"]["get"]["parameters"]
    assert {"leaf", "all", "before", "after"} <= {p["name"] for p in listing}
    message = document["components"]["schemas"]["MessageOut"]["properties"]
    assert {"sibling_index", "sibling_count", "previous_sibling_id", "next_sibling_id"} <= set(
        message
    )
    assert "feedback" in message
    stream = paths["/api/v1/messages/{message_id}/stream"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
