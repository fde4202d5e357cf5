"""Search finds a reply's reasoning (its model's thinking), marked as such: the index's part of
its own (migration 0010), the hit's flag and snippet, the page's label and the API's field."""

from __future__ import annotations

import uuid

from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from webchat.extensions import db
from webchat.models import User
from webchat.search import Filters, search

from .conftest import ROOT, sign_up
from .test_search import add_conversation, make_user

FOLDER = str(ROOT / "migrations")
THINKING = {
    "role": "assistant",
    "content": "The answer is forty-two.",
    "reasoning": "The user asks about an ocelot; recall the wild cats first.",
}


def test_a_word_only_in_the_reasoning_is_found_and_marked(app, ctx):
    ada = make_user()
    add_conversation(ada, "Cats", [{"role": "user", "content": "Tell me a number"}, THINKING])
    db.session.commit()
    [hit] = search(ada, "ocelot").items
    assert hit.in_reasoning and hit.role == "assistant"
    assert "<mark>ocelot</mark>" in str(hit.snippet) and "forty" not in str(hit.snippet)
    [answer] = search(ada, "forty-two").items
    assert not answer.in_reasoning and "<mark>" in str(answer.snippet)
    # a word in both is the text's hit; the role filter still applies
    [both] = search(ada, "answer ocelot OR recall").items
    assert (both.message_id, both.in_reasoning) == (hit.message_id, False)
    assert search(ada, "ocelot", Filters(roles=("user",))).items == []
    assert [h.message_id for h in search(ada, "ocelot", Filters(roles=("assistant",))).items] == [
        hit.message_id
    ]


def test_the_text_ranks_above_the_reasoning(app, ctx):
    ada = make_user()
    add_conversation(ada, "Thought", [{**THINKING, "content": "Fine."}])
    said = add_conversation(ada, "Said", [{"role": "assistant", "content": "An ocelot, surely."}])
    db.session.commit()
    hits = search(ada, "ocelot").items
    assert [(h.conversation_id, h.in_reasoning) for h in hits][0] == (said.id, False)
    assert [h.in_reasoning for h in hits] == [False, True]


def test_the_page_and_the_api_mark_a_hit_in_the_reasoning(app, client):
    from webchat.api import tokens

    sign_up(client)
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        add_conversation(ada, "Cats", [{"role": "user", "content": "A number?"}, THINKING])
        _row, token = tokens.create_token(ada, "tests")
        db.session.commit()
    page = client.get("/search?q=ocelot").get_data(as_text=True)
    assert 'class="hit-reasoning' in page and ">Thinking<" in page
    assert "hit-reasoning" not in client.get("/search?q=forty").get_data(as_text=True)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    [hit] = api.get("/api/v1/search?q=ocelot", headers=headers).get_json()["items"]
    assert hit["in_reasoning"] is True and "<mark>ocelot</mark>" in hit["snippet"]
    [hit] = api.get("/api/v1/search?q=forty", headers=headers).get_json()["items"]
    assert hit["in_reasoning"] is False
    document = api.get("/api/v1/openapi.json").get_json()
    assert "in_reasoning" in document["components"]["schemas"]["SearchHit"]["properties"]


def _indexed(word: str) -> int:
    """Index entries holding ``word`` in any part, read without the app's query."""
    if db.engine.dialect.name == "postgresql":
        sql = "SELECT count(*) FROM search_docs WHERE tsv @@ to_tsquery('english', :w)"
    else:
        sql = "SELECT count(*) FROM search_fts WHERE search_fts MATCH :w"
    return db.session.execute(text(sql), {"w": word}).scalar_one()


def test_migration_0010_backfills_the_reasoning_and_round_trips(app, ctx):
    """From 0009 with a reply whose thinking is stored: the upgrade indexes it, marked; the
    downgrade leaves it out of the index again and keeps everything else searchable."""
    ada = make_user()
    c = add_conversation(ada, "Backfilled", [{"role": "user", "content": "A number?"}, THINKING])
    conversation_id = c.id
    db.session.commit()
    db.session.remove()
    downgrade(directory=FOLDER, revision="0009")
    assert _indexed("ocelot") == 0 and _indexed("forty") == 1
    db.session.execute(
        text("UPDATE messages SET reasoning = reasoning || ' and a margay' WHERE role = :r"),
        {"r": "assistant"},
    )
    db.session.commit()
    assert _indexed("margay") == 0  # 0009's trigger does not read the reasoning
    db.session.remove()
    upgrade(directory=FOLDER)
    ada = db.session.scalars(select(User)).one()
    [hit] = search(ada, "ocelot").items
    assert hit.in_reasoning and hit.conversation_id == conversation_id
    assert [h.in_reasoning for h in search(ada, "margay").items] == [True]
    assert [h.in_reasoning for h in search(ada, "forty").items] == [False]
    assert [h.message_id for h in search(ada, "backfilled").items] == [None]
    db.session.remove()
    downgrade(directory=FOLDER, revision="0009")
    assert (_indexed("ocelot"), _indexed("forty"), _indexed("backfilled")) == (0, 1, 1)
    db.session.remove()
    upgrade(directory=FOLDER)
    ada = db.session.scalars(select(User)).one()
    assert [h.in_reasoning for h in search(ada, "ocelot").items] == [True]
    assert uuid.UUID(str(hit.message_id))
