"""The JSON API of the conversation tree: versions of a message (edit, regenerate), branches
(switch, ``?leaf=``, ``parent_id``), the whole tree (``?all=true``), fork, feedback; the errors
of each, and the context a provider receives (exactly the active path)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from bench.stream_persistence import StatementLog
from webchat import tree
from webchat.auth import services as accounts
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Status, new_id
from webchat.providers.demo import DemoProvider
from webchat.seed import seed
from webchat.streaming.store import next_timestamp

from .conftest import fixture_path, wait_for_runs
from .fakes.upstream import FakeUpstream, chunk_file_reply
from .test_api import Api, api_token, assert_error, new_conversation, send
from .test_providers import TEXT_CHUNKS, upstream_config


@pytest.fixture
def api(app):
    return Api(app, api_token(app))


def chat(app, api: Api, cid: str, content: str, **body) -> tuple[dict, dict]:
    """Send ``content``, wait for the reply; returns the user message and the finished reply."""
    response = send(api, cid, content, **body)
    assert response.status_code == 202, response.get_data(as_text=True)
    sent = response.get_json()
    wait_for_runs(app)
    return sent["message"], api.get(f"/messages/{sent['reply']['id']}").get_json()


def listed(api: Api, cid: str, **query) -> list[dict]:
    """The messages ``GET .../messages`` lists (one page of 200)."""
    response = api.get(f"/conversations/{cid}/messages", query_string={"limit": 200, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def ids(messages: list[dict]) -> list[str]:
    return [m["id"] for m in messages]


def active_of(api: Api, cid: str) -> str | None:
    return api.get(f"/conversations/{cid}").get_json()["active_message_id"]


def snapshot(app) -> dict:
    """Everything stored that these routes could change: every message, run and conversation."""
    with app.app_context():
        messages = {
            m.id: (m.parent_id, m.role, m.content, m.status, m.meta, m.feedback_rating)
            + (m.feedback_comment, m.segment_id, m.depth)
            for m in db.session.scalars(select(Message))
        }
        runs = {r.id: (r.status, r.message_id) for r in db.session.scalars(select(Run))}
        conversations = {
            c.id: (c.title, c.active_message_id, c.message_count, c.meta)
            for c in db.session.scalars(select(Conversation))
        }
    return {"messages": messages, "runs": runs, "conversations": conversations}


@pytest.fixture
def branched(app, api):
    """A conversation with two branches: ``u1 a1 u2 a2`` and the edit ``e1 r1`` of ``u1``
    (active). Returns the conversation id and the messages by name."""
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    u2, a2 = chat(app, api, cid, "second")
    edited = api.post(f"/messages/{u1['id']}/edit", json={"content": "first, edited"})
    assert edited.status_code == 202, edited.get_data(as_text=True)
    wait_for_runs(app)
    e1 = edited.get_json()["message"]
    r1 = api.get(f"/messages/{edited.get_json()['reply']['id']}").get_json()
    return cid, {"u1": u1, "a1": a1, "u2": u2, "a2": a2, "e1": e1, "r1": r1}


# --- versions: edit and regenerate ----------------------------------------------------------


def test_edit_a_user_message_is_a_new_branch_with_a_reply(app, api):
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    assert (u1["sibling_index"], u1["sibling_count"]) == (1, 1)
    assert u1["feedback"] == {"rating": None, "comment": None}

    response = api.post(f"/messages/{u1['id']}/edit", json={"content": "first, edited"})
    assert response.status_code == 202
    body = response.get_json()
    edited, reply = body["message"], body["reply"]
    assert (edited["role"], edited["content"], edited["parent_id"]) == (
        "user",
        "first, edited",
        None,
    )
    assert edited["metadata"]["edited_from"] == u1["id"]
    assert (edited["sibling_index"], edited["sibling_count"]) == (2, 2)
    assert edited["previous_sibling_id"] == u1["id"] and edited["next_sibling_id"] is None
    assert reply["parent_id"] == edited["id"] and reply["role"] == "assistant"
    assert body["stream_url"] == f"/api/v1/messages/{reply['id']}/stream"
    wait_for_runs(app)

    done = api.get(f"/messages/{reply['id']}").get_json()
    assert done["content"] == DemoProvider().reply_text("first, edited")
    assert ids(listed(api, cid)) == [edited["id"], reply["id"]]
    assert active_of(api, cid) == reply["id"]
    # the original is untouched, and now knows its newer sibling
    original = api.get(f"/messages/{u1['id']}").get_json()
    assert original["content"] == "first" and original["next_sibling_id"] == edited["id"]
    assert (original["sibling_index"], original["sibling_count"]) == (1, 2)
    assert api.get(f"/messages/{a1['id']}").get_json()["content"] == a1["content"]


def test_edit_an_assistant_message_stores_a_version_without_a_run(app, api):
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    with app.app_context():
        run_count = len(db.session.scalars(select(Run.id)).all())

    response = api.post(f"/messages/{a1['id']}/edit", json={"content": "A *better* answer."})
    assert response.status_code == 201
    edited = response.get_json()["message"]
    assert set(response.get_json()) == {"message"}
    assert (edited["role"], edited["content"], edited["status"]) == (
        "assistant",
        "A *better* answer.",
        "complete",
    )
    assert edited["parent_id"] == u1["id"] and edited["metadata"]["edited_from"] == a1["id"]
    assert edited["metadata"]["model"] == "demo/echo"
    assert (edited["sibling_index"], edited["sibling_count"]) == (2, 2)
    assert ids(listed(api, cid)) == [u1["id"], edited["id"]]
    assert active_of(api, cid) == edited["id"]
    with app.app_context():
        assert len(db.session.scalars(select(Run.id)).all()) == run_count


def test_regenerate_twice_gives_three_sibling_replies(app, api):
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "hello")

    first = api.post(f"/messages/{a1['id']}/regenerate", json={})
    assert first.status_code == 202
    a2 = first.get_json()["reply"]
    assert a2["parent_id"] == u1["id"] and a2["status"] in ("pending", "streaming", "complete")
    assert first.get_json()["stream_url"] == f"/api/v1/messages/{a2['id']}/stream"
    wait_for_runs(app)
    # a user message regenerates too: another reply to it; the body may be left out
    second = api.post(f"/messages/{u1['id']}/regenerate")
    assert second.status_code == 202, second.get_data(as_text=True)
    a3 = second.get_json()["reply"]
    wait_for_runs(app)

    page = listed(api, cid)
    assert ids(page) == [u1["id"], a3["id"]]
    last = page[-1]
    assert (last["sibling_index"], last["sibling_count"]) == (3, 3)
    assert (last["previous_sibling_id"], last["next_sibling_id"]) == (a2["id"], None)
    assert last["content"] == DemoProvider().reply_text("hello")
    middle = api.get(f"/messages/{a2['id']}").get_json()
    assert (middle["sibling_index"], middle["sibling_count"]) == (2, 3)
    assert (middle["previous_sibling_id"], middle["next_sibling_id"]) == (a1["id"], a3["id"])
    oldest = api.get(f"/messages/{a1['id']}").get_json()
    assert (oldest["sibling_index"], oldest["previous_sibling_id"]) == (1, None)
    assert active_of(api, cid) == a3["id"]


# --- branches: switch, ?leaf=, parent_id ----------------------------------------------------


def test_switch_branch_with_active_and_the_listing_follows(app, api, branched):
    cid, m = branched
    assert ids(listed(api, cid)) == [m["e1"]["id"], m["r1"]["id"]]

    response = api.post(f"/conversations/{cid}/active", json={"message_id": m["u1"]["id"]})
    assert response.status_code == 200
    # the newest leaf under the message becomes active
    assert response.get_json()["active_message_id"] == m["a2"]["id"]
    assert response.get_json()["id"] == cid
    old_branch = [m[k]["id"] for k in ("u1", "a1", "u2", "a2")]
    assert ids(listed(api, cid)) == old_branch
    detail = api.get(f"/conversations/{cid}").get_json()
    assert ids(detail["messages"]) == old_branch and detail["active_message_id"] == m["a2"]["id"]
    assert listed(api, cid)[0]["next_sibling_id"] == m["e1"]["id"]

    back = api.post(f"/conversations/{cid}/active", json={"message_id": m["e1"]["id"]})
    assert back.get_json()["active_message_id"] == m["r1"]["id"]
    assert ids(listed(api, cid)) == [m["e1"]["id"], m["r1"]["id"]]


def test_leaf_lists_a_branch_without_switching_and_cursors_page_their_path(app, api, branched):
    cid, m = branched
    old_branch = [m[k]["id"] for k in ("u1", "a1", "u2", "a2")]
    before = snapshot(app)

    page = api.get(f"/conversations/{cid}/messages", query_string={"leaf": m["a1"]["id"]})
    assert page.status_code == 200
    assert ids(page.get_json()["items"]) == old_branch  # down to the newest leaf under a1
    assert page.get_json()["total"] == 4
    assert ids(listed(api, cid, leaf=m["a2"]["id"])) == old_branch
    # paged along that branch
    first = api.get(
        f"/conversations/{cid}/messages", query_string={"leaf": m["a2"]["id"], "limit": 3}
    ).get_json()
    assert ids(first["items"]) == old_branch[:3] and first["has_more"]
    rest = listed(api, cid, leaf=m["a2"]["id"], after=first["next_cursor"])
    assert ids(rest) == old_branch[3:]
    # a cursor on another branch than the active one pages the path through it
    assert ids(listed(api, cid, after=m["u1"]["id"])) == old_branch[1:]
    assert ids(listed(api, cid, before=m["a2"]["id"])) == old_branch[:3]
    # the active leaf did not move
    assert snapshot(app) == before
    assert ids(listed(api, cid)) == [m["e1"]["id"], m["r1"]["id"]]
    # a cursor off the path of leaf
    response = api.get(
        f"/conversations/{cid}/messages",
        query_string={"leaf": m["a2"]["id"], "after": m["e1"]["id"]},
    )
    assert_error(response, 400, "invalid_input", "after")
    unknown = api.get(f"/conversations/{cid}/messages", query_string={"leaf": str(uuid.uuid4())})
    assert_error(unknown, 404, "not_found", "leaf")


def test_all_lists_every_message_of_the_tree_once(app, api, branched):
    cid, m = branched
    seen, after, totals = [], None, set()
    while True:
        query = {"all": "true", "limit": 4, **({"after": after} if after else {})}
        page = api.get(f"/conversations/{cid}/messages", query_string=query).get_json()
        seen += page["items"]
        totals.add(page["total"])
        after = page["next_cursor"]
        if after is None:
            break
    assert len(seen) == 6 and totals == {6}
    assert set(ids(seen)) == {m[k]["id"] for k in m}
    assert [(s["created_at"], s["id"]) for s in seen] == sorted(
        (s["created_at"], s["id"]) for s in seen
    )
    assert ids(seen) == [m[k]["id"] for k in ("u1", "a1", "u2", "a2", "e1", "r1")]
    in_time = ids(seen)
    # backwards from a cursor, between two, and with an offset: positions in that same order
    assert ids(listed(api, cid, all="true", before=in_time[4], limit=2)) == in_time[2:4]
    assert ids(listed(api, cid, all="true", after=in_time[0], before=in_time[5])) == in_time[1:5]
    assert ids(listed(api, cid, all="true", offset=4)) == in_time[4:]
    response = api.get(
        f"/conversations/{cid}/messages", query_string={"all": "true", "leaf": m["a1"]["id"]}
    )
    assert_error(response, 400, "invalid_input", "leaf")


def test_send_with_parent_id_answers_that_message_and_makes_its_branch_active(app, api):
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    u2, a2 = chat(app, api, cid, "second")

    u3, a3 = chat(app, api, cid, "second, again", parent_id=a1["id"])
    assert u3["parent_id"] == a1["id"] and a3["parent_id"] == u3["id"]
    assert (u3["sibling_index"], u3["sibling_count"], u3["previous_sibling_id"]) == (
        2,
        2,
        u2["id"],
    )
    assert ids(listed(api, cid)) == [u1["id"], a1["id"], u3["id"], a3["id"]]
    assert active_of(api, cid) == a3["id"]
    # the next message without parent_id answers the new active leaf
    u4, _ = chat(app, api, cid, "third")
    assert u4["parent_id"] == a3["id"]

    other = new_conversation(api)["id"]
    _, elsewhere = chat(app, api, other, "elsewhere")
    before = snapshot(app)
    response = send(api, cid, "x", parent_id=elsewhere["id"])
    assert_error(response, 400, "invalid_input", "parent_id")
    assert_error(send(api, cid, "x", parent_id=str(uuid.uuid4())), 404, "not_found", "parent_id")
    assert_error(send(api, cid, "x", parent_id="nope"), 400, "invalid_input", "parent_id")
    assert snapshot(app) == before


# --- fork and feedback ----------------------------------------------------------------------


def test_fork_copies_the_path_into_a_new_conversation(app, api, branched):
    cid, m = branched
    before = snapshot(app)
    response = api.post(f"/messages/{m['u2']['id']}/fork")
    assert response.status_code == 201
    fork = response.get_json()
    assert fork["id"] != cid and fork["message_count"] == 3
    assert fork["metadata"]["forked_from"] == {"conversation_id": cid, "message_id": m["u2"]["id"]}
    assert fork["title"].endswith("(fork)") and fork["model"] == "demo/echo"
    copied = listed(api, fork["id"])
    assert [(c["role"], c["content"]) for c in copied] == [
        (m[k]["role"], m[k]["content"]) for k in ("u1", "a1", "u2")
    ]
    assert not set(ids(copied)) & {m[k]["id"] for k in m}
    assert [c["parent_id"] for c in copied] == [None, copied[0]["id"], copied[1]["id"]]
    assert fork["active_message_id"] == copied[-1]["id"]
    assert all(c["sibling_count"] == 1 for c in copied)
    # the source is as it was
    after = snapshot(app)
    assert {k: after["messages"][k] for k in before["messages"]} == before["messages"]
    assert after["conversations"][uuid.UUID(cid)] == before["conversations"][uuid.UUID(cid)]


def test_feedback_round_trip(app, api):
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "rate me")
    url = f"/messages/{a1['id']}/feedback"

    response = api.put(url, json={"rating": "up", "comment": "  Spot on.  "})
    assert response.status_code == 200
    assert response.get_json()["feedback"] == {"rating": "up", "comment": "Spot on."}
    assert api.get(f"/messages/{a1['id']}").get_json()["feedback"] == {
        "rating": "up",
        "comment": "Spot on.",
    }
    assert listed(api, cid)[1]["feedback"]["rating"] == "up"
    down = api.put(url, json={"rating": "down"}).get_json()
    assert down["feedback"] == {"rating": "down", "comment": None}

    before = snapshot(app)
    for body, field in [
        ({"rating": "meh"}, "rating"),
        ({}, "rating"),
        ({"rating": "up", "comment": "x" * 2001}, "comment"),
        ({"rating": "up", "stars": 5}, "stars"),
    ]:
        assert_error(api.put(url, json=body), 400, "invalid_input", field)
    user_feedback = api.put(f"/messages/{u1['id']}/feedback", json={"rating": "up"})
    assert_error(user_feedback, 400, "invalid_input", "rating")
    assert snapshot(app) == before

    cleared = api.put(url, json={"rating": None, "comment": ""}).get_json()
    assert cleared["feedback"] == {"rating": None, "comment": None}


# --- conflicts and bad input ----------------------------------------------------------------


def test_a_second_run_while_one_streams_is_409(make_app):
    app = make_app(DEMO_DELAY_MS=20)
    api = Api(app, api_token(app))
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    sent = send(api, cid, "/long 2000").get_json()  # 40 s of words unless stopped
    streaming, u2 = sent["reply"], sent["message"]

    def stored_except_the_live_reply() -> dict:
        state = snapshot(app)
        state["messages"].pop(uuid.UUID(streaming["id"]))
        state["runs"] = set(state["runs"])
        return state

    before = stored_except_the_live_reply()
    attempts = [
        send(api, cid, "second"),
        send(api, cid, "second", parent_id=a1["id"]),
        api.post(f"/messages/{u2['id']}/edit", json={"content": "changed"}),
        api.post(f"/messages/{u1['id']}/edit", json={"content": "changed"}),
        api.post(f"/messages/{a1['id']}/regenerate"),
        api.post(f"/messages/{u1['id']}/regenerate"),
        api.post(f"/messages/{streaming['id']}/edit", json={"content": "mine now"}),
        api.post(f"/messages/{streaming['id']}/fork"),
    ]
    for response in attempts:
        error = assert_error(response, 409, "conflict")
        assert "still" in error["message"]
    with app.app_context():
        live = db.session.get(Message, uuid.UUID(streaming["id"]))
        assert live.status in Status.ACTIVE
    assert stored_except_the_live_reply() == before

    assert api.post(f"/messages/{streaming['id']}/cancel").status_code == 202
    wait_for_runs(app)
    assert api.get(f"/messages/{streaming['id']}").get_json()["status"] == "cancelled"
    assert api.post(f"/messages/{a1['id']}/regenerate").status_code == 202


def add_tool_message(app, parent_id: str) -> str:
    """A tool result under ``parent_id``, as a run stores one; returns its id."""
    with app.app_context():
        parent = db.session.get(Message, uuid.UUID(parent_id))
        now = next_timestamp(parent.created_at)
        message = Message(
            id=new_id(),
            conversation_id=parent.conversation_id,
            parent_id=parent.id,
            role=Role.TOOL,
            content="42",
            tool_name="multiply",
            tool_result={"tool_call_id": "call_1", "result": 42, "error": None},
            status=Status.COMPLETE,
            created_at=now,
            updated_at=now,
        )
        tree.attach(message, parent)
        db.session.add(message)
        db.session.commit()
        return str(message.id)


def test_bad_input_is_a_clear_error_and_changes_nothing(make_app):
    app = make_app(MAX_MESSAGE_CHARS=1000)
    api = Api(app, api_token(app))
    cid = new_conversation(api)["id"]
    u1, a1 = chat(app, api, cid, "first")
    tool = add_tool_message(app, a1["id"])
    before = snapshot(app)

    edit = f"/messages/{u1['id']}/edit"
    assert_error(api.post(edit, json={"content": ""}), 400, "invalid_input", "content")
    error = assert_error(api.post(edit, json={"content": "  \n "}), 400, "invalid_input")
    assert "empty" in error["details"]["fields"]["content"]
    assert_error(api.post(edit, json={}), 400, "invalid_input", "content")
    too_long = assert_error(api.post(edit, json={"content": "x" * 1001}), 413, "too_large")
    assert "1,000" in too_long["message"]
    assert_error(api.post(f"/messages/{tool}/edit", json={"content": "43"}), 400, "invalid_input")
    regenerated = assert_error(api.post(f"/messages/{tool}/regenerate"), 400, "invalid_input")
    assert "tool" in regenerated["message"]
    assert_error(
        api.post(f"/messages/{a1['id']}/regenerate", json={"model": "nowhere/none"}),
        400,
        "invalid_input",
        "model",
    )
    active = f"/conversations/{cid}/active"
    assert_error(api.post(active, json={}), 400, "invalid_input", "message_id")
    assert_error(api.post(active, json={"message_id": "x"}), 400, "invalid_input", "message_id")
    unknown = str(uuid.uuid4())
    for response in [
        api.post(f"/messages/{unknown}/edit", json={"content": "x"}),
        api.post(f"/messages/{unknown}/regenerate"),
        api.post(f"/messages/{unknown}/fork"),
        api.put(f"/messages/{unknown}/feedback", json={"rating": "up"}),
        api.post(active, json={"message_id": unknown}),
        api.post(f"/conversations/{unknown}/active", json={"message_id": u1["id"]}),
    ]:
        assert_error(response, 404, "not_found")
    assert snapshot(app) == before
    # a message of the user's other conversation is not this one's
    other = new_conversation(api)["id"]
    _, elsewhere = chat(app, api, other, "elsewhere")
    before = snapshot(app)
    response = api.post(active, json={"message_id": elsewhere["id"]})
    assert_error(response, 400, "invalid_input", "message_id")
    assert snapshot(app) == before


# --- what the provider receives -------------------------------------------------------------


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


def sent_context(upstream: FakeUpstream) -> list[tuple[str, str]]:
    """``(role, content)`` of the messages of the last request the provider received."""
    return [(m["role"], m["content"]) for m in upstream.posts()[-1]["json"]["messages"]]


def path_context(api: Api, cid: str) -> list[tuple[str, str]]:
    """``(role, content)`` of the active path without its newest message (the reply)."""
    return [(m["role"], m["content"]) for m in listed(api, cid)[:-1]]


def test_the_provider_receives_exactly_the_active_path(make_app, upstream):
    app = make_app(**upstream_config(upstream))
    api = Api(app, api_token(app))
    reply = chunk_file_reply(fixture_path(*TEXT_CHUNKS))
    upstream.queue(*[reply] * 7)
    cid = new_conversation(api, model="openai/gpt-4o-mini")["id"]
    u1, a1 = chat(app, api, cid, "first")
    u2, a2 = chat(app, api, cid, "second")
    assert a2["status"] == "complete", a2["error"]
    assert sent_context(upstream) == path_context(api, cid)
    assert [r for r, _ in sent_context(upstream)] == ["user", "assistant", "user"]

    # an edit: the new branch holds only the edited message
    edited = api.post(f"/messages/{u1['id']}/edit", json={"content": "first, edited"})
    assert edited.status_code == 202
    wait_for_runs(app)
    assert sent_context(upstream) == [("user", "first, edited")] == path_context(api, cid)

    # switch back to the first branch and go on there: its whole path, not the edit
    api.post(f"/conversations/{cid}/active", json={"message_id": u1["id"]})
    chat(app, api, cid, "third")
    context = sent_context(upstream)
    assert context == path_context(api, cid)
    assert [c for _, c in context] == ["first", a1["content"], "second", a2["content"], "third"]

    # an edited reply is what the model reads next
    last = listed(api, cid)[-1]
    assert api.post(f"/messages/{last['id']}/edit", json={"content": "Edited."}).status_code == 201
    chat(app, api, cid, "fourth")
    assert sent_context(upstream) == path_context(api, cid)
    assert sent_context(upstream)[-2:] == [("assistant", "Edited."), ("user", "fourth")]

    # regenerating a reply on an old branch sends that branch, up to its user message
    assert api.post(f"/messages/{a1['id']}/regenerate").status_code == 202
    wait_for_runs(app)
    assert sent_context(upstream) == [("user", "first")] == path_context(api, cid)
    assert len(upstream.posts()) == 6


# --- work -----------------------------------------------------------------------------------


def test_a_page_costs_the_same_statements_whatever_its_size(app, api):
    """Sibling places are read once per page (one query for all the page's parents), not once
    per message: a page of 80 runs as many statements as a page of 4."""
    with app.app_context():
        user = accounts.find_user("ada@example.com")
        (cid,) = seed(user, messages=80, branches=4)
        db.session.commit()
        log = StatementLog(db.engine)
    url = f"/conversations/{cid}/messages"
    api.get(url)  # the token's first use of the day is recorded once
    counts = {}
    try:
        for query in ({}, {"all": "true"}):
            for limit in (4, 80):
                start = len(log.statements)
                page = api.get(url, query_string={"limit": limit, **query}).get_json()
                counts[(bool(query), limit)] = len(log.statements) - start
                assert len(page["items"]) == limit
    finally:
        log.close()
    assert counts[(False, 4)] == counts[(False, 80)]
    assert counts[(True, 4)] == counts[(True, 80)]
    branched = [m for m in listed(api, cid) if m["sibling_count"] > 1]
    assert len(branched) == 4 and all(m["sibling_count"] == 2 for m in branched)
