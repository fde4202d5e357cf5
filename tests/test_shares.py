"""Share links: a snapshot that hides later messages until updated (new branches and edits
included), revoke and expiry as 404s, the page's noindex and what it never shows, "continue" by
another user or by no user, every branch, tool steps left out, the API, and other users' ids."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Conversation, Message, Share, utcnow

from . import test_api
from .conftest import csrf_token, post, sign_in, sign_up, wait_for_runs
from .test_api import Api, api_token, assert_error, new_conversation
from .test_conversations import start_conversation

api = test_api.api  # the fixture
OWNER = "owner@example.com"


def _send(client, cid, content):
    assert post(client, f"/c/{cid}/messages", {"content": content}).status_code == 303


def _share(client, cid, **form) -> str:
    response = post(
        client, f"/c/{cid}/shares", {"branches": "active", "include_tools": "1", **form}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    shared = response.headers["Location"].split("shared=", 1)[1].split("#", 1)[0]
    return shared


def _shown(client, path: str) -> str:
    """The messages of a shared page (its title left out)."""
    return client.get(path).get_data(as_text=True).split('id="messages"', 1)[1]


@pytest.fixture
def owner(app, client):
    sign_up(client, OWNER)
    cid = start_conversation(client, "First question about otters")
    wait_for_runs(app)
    return client, cid


def test_share_id_is_unguessable_and_page_is_noindex_without_the_owner(app, owner):
    client, cid = owner
    other = start_conversation(client, "Private other conversation")
    wait_for_runs(app)
    share_id = _share(client, cid)
    assert len(base64.urlsafe_b64decode(share_id + "==")) >= 16  # at least 128 random bits
    assert _share(client, cid) != share_id
    anonymous = app.test_client()
    page = anonymous.get(f"/s/{share_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "First question about otters" in html
    assert '<meta name="robots" content="noindex' in html
    assert page.headers["X-Robots-Tag"].startswith("noindex")
    assert OWNER not in html and "Private other conversation" not in html and other not in html
    assert 'id="composer"' not in html and 'class="sidebar"' not in html
    assert "Sign in to continue" in html
    # the owner's settings list it, with its views
    settings = client.get("/settings/").get_data(as_text=True)
    assert f"/s/{share_id}" in settings
    with app.app_context():
        assert db.session.get(Share, share_id).views == 1


def test_a_snapshot_hides_later_messages_until_updated(app, owner):
    client, cid = owner
    share_id = _share(client, cid, branches="all")
    _send(client, cid, "A later message about beavers")
    wait_for_runs(app)
    with app.app_context():  # an edit of the first message: a new branch after the snapshot
        first = db.session.scalars(
            select(Message).where(
                Message.content == "First question about otters", Message.role == "user"
            )
        ).one()
        first_id = first.id
    post(client, f"/m/{first_id}/edit", {"content": "Edited question about seals"})
    wait_for_runs(app)
    anonymous = app.test_client()
    html = _shown(anonymous, f"/s/{share_id}")
    assert "otters" in html and "beavers" not in html and "seals" not in html
    assert "1/2" not in html  # the edit's version is not counted either
    # asking for a later message through the URL is a 404, never the message
    with app.app_context():
        later = db.session.scalars(
            select(Message).where(Message.content.contains("seals"), Message.role == "user")
        ).one()
    assert anonymous.get(f"/s/{share_id}?leaf={later.id}").status_code == 404
    assert anonymous.get(f"/s/{share_id}?before={later.id}").status_code == 404
    assert app.test_client().get(f"/api/v1/shared/{share_id}?leaf={later.id}").status_code == 404
    # updated: the active path now (the edit), and the old version one click away
    assert post(client, f"/shares/{share_id}/update").status_code == 303
    html = _shown(anonymous, f"/s/{share_id}")
    assert "seals" in html and "otters" not in html and "2/2" in html
    older = _shown(anonymous, f"/s/{share_id}?leaf={first_id}")
    assert "otters" in older and "beavers" in older and "1/2" in older


def test_revoke_and_expiry_are_404(app, owner):
    client, cid = owner
    share_id = _share(client, cid)
    anonymous = app.test_client()
    assert anonymous.get(f"/s/{share_id}").status_code == 200
    assert post(client, f"/shares/{share_id}/revoke").status_code == 303
    assert anonymous.get(f"/s/{share_id}").status_code == 404
    assert anonymous.get(f"/api/v1/shared/{share_id}").status_code == 404
    # an expiry date in the past is refused; one passed later makes the link a 404
    past = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    assert post(client, f"/c/{cid}/shares", {"expires_at": past}).status_code == 400
    assert post(client, f"/c/{cid}/shares", {"expires_at": "tomorrow"}).status_code == 400
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d")
    expiring = _share(client, cid, expires_at=tomorrow)
    assert anonymous.get(f"/s/{expiring}").status_code == 200
    with app.app_context():
        db.session.get(Share, expiring).expires_at = datetime(2020, 1, 1, tzinfo=UTC)
        db.session.commit()
    assert anonymous.get(f"/s/{expiring}").status_code == 404
    # a conversation in Trash takes its links down
    live = _share(client, cid)
    post(client, f"/c/{cid}/trash")
    assert anonymous.get(f"/s/{live}").status_code == 404


def test_continue_in_my_account(app, owner):
    client, cid = owner
    share_id = _share(client, cid)
    anonymous = app.test_client()
    # no user: sent to sign in, nothing stored
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Conversation))
    token = csrf_token(anonymous, f"/s/{share_id}")  # the shared page's form carries one
    gone = anonymous.post(f"/s/{share_id}/continue", data={"csrf_token": token})
    assert gone.status_code == 303 and "/login" in gone.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == before
    # another user: a copy of their own, the owner's untouched
    viewer = app.test_client()
    sign_up(viewer, "viewer@example.com")
    response = post(viewer, f"/s/{share_id}/continue")
    assert response.status_code == 303
    copy_id = response.headers["Location"].rsplit("/", 1)[1]
    page = viewer.get(f"/c/{copy_id}").get_data(as_text=True)
    assert "First question about otters" in page and 'id="composer"' in page
    with app.app_context():
        copy = db.session.get(Conversation, uuid.UUID(copy_id))
        assert copy.user.email == "viewer@example.com" and copy.meta == {"shared_from": share_id}
        assert copy.message_count == 2 and copy.system_prompt is None
    _send(viewer, copy_id, "My own follow-up")
    wait_for_runs(app)
    assert "My own follow-up" not in anonymous.get(f"/s/{share_id}").get_data(as_text=True)
    assert client.get(f"/c/{copy_id}").status_code == 404  # the owner can't read the copy
    # sign in from the shared page, then continue
    late = app.test_client()
    sign_up(late, "late@example.com")
    post(late, "/logout")
    assert sign_in(late, "late@example.com").status_code == 302
    assert post(late, f"/s/{share_id}/continue").status_code == 303


def tool_conversation(user) -> Conversation:
    """A conversation of ``user``: a question, a tool call, its result, the answer."""
    from .test_search import add_conversation

    call = {"id": "call_1", "name": "clock", "arguments": {}}
    return add_conversation(
        user,
        "Tools",
        [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "", "tool_call": call, "tool_name": "clock"},
            {
                "role": "tool",
                "content": "",
                "tool_result": {"tool_call_id": "call_1", "result": "noon"},
            },
            {"role": "assistant", "content": "It is noon."},
        ],
    )


def test_tool_steps_are_left_out_unless_included(app, ctx):
    from webchat.shares import services as shares

    from .test_search import make_user

    ada = make_user()
    conversation = tool_conversation(ada)
    with_tools = shares.create_share(ada, conversation, include_tools=True)
    without = shares.create_share(ada, conversation, include_tools=False)
    roles = [m.role for m in shares.shared_window(with_tools, limit=50).messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    shown = shares.shared_window(without, limit=50).messages
    assert [m.content for m in shown] == ["What time is it?", "It is noon."]
    viewer = make_user("viewer@example.com")
    copy = shares.continue_share(viewer, without)
    db.session.flush()
    copied = db.session.scalars(
        select(Message.content).where(Message.conversation_id == copy.id).order_by(Message.depth)
    ).all()
    assert copied == ["What time is it?", "It is noon."]


def test_the_shared_page_is_paged(app, ctx):
    from webchat.shares import services as shares

    from .test_search import add_conversation, make_user

    ada = make_user()
    conversation = add_conversation(
        ada, "Long", [{"role": "user", "content": f"line {i}"} for i in range(25)]
    )
    share = shares.create_share(ada, conversation)
    db.session.commit()
    page = shares.shared_window(share, limit=10)
    assert [m.content for m in page.messages] == [f"line {i}" for i in range(15, 25)]
    back = shares.shared_window(share, limit=10, before=str(page.window.older.id))
    assert [m.content for m in back.messages] == [f"line {i}" for i in range(5, 15)]
    client = app.test_client()
    app.config["PAGE_SIZE"] = 10
    html = client.get(f"/s/{share.id}").get_data(as_text=True)
    assert "Earlier messages" in html and f"before={page.window.older.id}" in html
    response = client.get(f"/api/v1/shared/{share.id}", query_string={"limit": 10})
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    body = response.get_json()
    assert [m["content"] for m in body["messages"]] == [f"line {i}" for i in range(15, 25)]
    assert body["has_more"] and body["next_cursor"] == str(page.window.older.id)
    assert OWNER not in str(body) and "user_id" not in str(body)


def test_shares_in_the_api(app, api):
    cid = new_conversation(api, title="Shared by API")["id"]
    assert_error(api.post(f"/conversations/{cid}/shares", json={}), 400, "invalid_input")
    api.post(f"/conversations/{cid}/messages", json={"content": "hello otters"})
    wait_for_runs(app)
    created = api.post(f"/conversations/{cid}/shares", json={"all_branches": True})
    assert created.status_code == 201
    share = created.get_json()
    assert share["url"].startswith("http://") and share["url"].endswith(f"/s/{share['id']}")
    anonymous = app.test_client()
    shared = anonymous.get(f"/api/v1/shared/{share['id']}").get_json()
    assert shared["title"] == "Shared by API" and len(shared["messages"]) == 2
    api.post(f"/conversations/{cid}/messages", json={"content": "later beavers"})
    wait_for_runs(app)
    assert len(anonymous.get(f"/api/v1/shared/{share['id']}").get_json()["messages"]) == 2
    patched = api.patch(f"/shares/{share['id']}", json={"refresh": True, "include_tools": False})
    assert patched.status_code == 200 and patched.get_json()["include_tools"] is False
    assert len(anonymous.get(f"/api/v1/shared/{share['id']}").get_json()["messages"]) == 4
    listed = api.get("/shares").get_json()["items"]
    assert [s["id"] for s in listed] == [share["id"]] and listed[0]["views"] == 3
    assert_error(
        api.patch(f"/shares/{share['id']}", json={"expires_at": "2020-01-01T00:00:00Z"}),
        400,
        "invalid_input",
    )
    assert api.delete(f"/shares/{share['id']}").status_code == 204
    assert_error(anonymous.get(f"/api/v1/shared/{share['id']}"), 404, "not_found")


def test_other_users_shares_are_404(app, api):
    cid = new_conversation(api, title="mine")["id"]
    api.post(f"/conversations/{cid}/messages", json={"content": "secret"})
    wait_for_runs(app)
    share = api.post(f"/conversations/{cid}/shares", json={}).get_json()
    other = Api(app, api_token(app, "bob@example.com"))
    for response in (
        other.patch(f"/shares/{share['id']}", json={"refresh": True}),
        other.delete(f"/shares/{share['id']}"),
        other.post(f"/conversations/{cid}/shares", json={}),
    ):
        assert_error(response, 404, "not_found")
    assert other.get("/shares").get_json()["items"] == []
    # the link itself is public, read-only
    assert other.get(f"/shared/{share['id']}").status_code == 200
    assert api.get("/shares").get_json()["items"][0]["id"] == share["id"]


def test_creating_share_links_is_rate_limited(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True, SHARE_LIMIT="2 per hour", RATELIMIT_STORAGE_URI="memory://"
    )
    client = app.test_client()
    sign_up(client, OWNER)
    cid = start_conversation(client, "Limited")
    wait_for_runs(app)
    assert [post(client, f"/c/{cid}/shares").status_code for _ in range(3)] == [303, 303, 429]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Share)) == 2
