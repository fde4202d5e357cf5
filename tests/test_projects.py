"""Projects and tags: create, move conversations in and out (page and API), delete a project
(its conversations kept), a project's instructions reaching the provider, tag filters on the
sidebar, the API and search, and the migration 0013 from 0011 with data in it."""

from __future__ import annotations

import uuid

from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from webchat.extensions import db
from webchat.models import Conversation, Project, Tag

from . import test_api
from . import test_providers_compat as compat
from .conftest import ROOT, post, sign_up, wait_for_runs
from .test_api import Api, api_token, assert_error, new_conversation
from .test_conversations import start_conversation

api = test_api.api  # the fixture
FOLDER = str(ROOT / "migrations")
upstream = compat.upstream


def _project(client, name="Garden", **fields) -> str:
    response = post(client, "/projects", {"name": name, **fields})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def _conversation(app, cid) -> Conversation:
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        db.session.expunge_all()
        return conversation


def _sidebar(client, path="/") -> str:
    html = client.get(path).get_data(as_text=True)
    return html.split('id="conversation-list"', 1)[1].split("</nav>", 1)[0]


def _results(client, path: str) -> str:
    """The search page's results, without the sidebar."""
    return client.get(path).get_data(as_text=True).split('<main class="main">', 1)[1]


def test_a_project_holds_conversations_and_deleting_it_keeps_them(app, user_client):
    pid = _project(user_client, "Garden", instructions="Answer as a gardener.")
    page = user_client.get(f"/projects/{pid}").get_data(as_text=True)
    assert "New chat in this project" in page and "Answer as a gardener." in page
    # a new chat in the project, from its page's button (the new-chat page with ?project=)
    new = user_client.get(f"/?project={pid}").get_data(as_text=True)
    assert f'name="project_id" value="{pid}"' in new
    response = post(user_client, "/c", {"content": "Roses?", "project_id": pid})
    inside = response.headers["Location"].rsplit("/", 1)[1]
    loose = start_conversation(user_client, "Loose one")
    wait_for_runs(app)
    assert str(_conversation(app, inside).project_id) == pid
    # the sidebar lists loose conversations; the project's are on its page and its entry
    sidebar = _sidebar(user_client)
    assert "Loose one" in sidebar and "Roses?" not in sidebar
    assert "Garden" in user_client.get("/").get_data(as_text=True)
    items = user_client.get(f"/projects/{pid}?sidebar=1", headers={"HX-Request": "true"})
    assert "Roses?" in items.get_data(as_text=True)
    assert "Loose one" not in items.get_data(as_text=True)
    # move the loose one in from its menu, then out again
    assert post(user_client, f"/c/{loose}/project", {"project_id": pid}).status_code == 303
    assert str(_conversation(app, loose).project_id) == pid
    assert "Loose one" in user_client.get(f"/projects/{pid}").get_data(as_text=True)
    assert post(user_client, f"/c/{loose}/project", {"project_id": ""}).status_code == 303
    assert _conversation(app, loose).project_id is None
    # a bad name is refused, nothing changed
    bad = post(user_client, f"/projects/{pid}", {"name": "   ", "instructions": "x"})
    assert bad.status_code == 400 and "needs a name" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Project, uuid.UUID(pid)).instructions == "Answer as a gardener."
    # deleting the project keeps its conversations, loose
    assert post(user_client, f"/projects/{pid}/delete").status_code == 303
    kept = _conversation(app, inside)
    assert kept.project_id is None and kept.deleted_at is None
    assert "Roses?" in _sidebar(user_client)
    assert user_client.get(f"/projects/{pid}").status_code == 404


def test_projects_and_tags_in_the_api(app, api):
    created = api.post(
        "/projects",
        json={"name": "Work", "instructions": "Be brief.", "default_model": "demo/echo"},
    )
    assert created.status_code == 201
    pid = created.get_json()["id"]
    assert [p["name"] for p in api.get("/projects").get_json()["items"]] == ["Work"]
    a = new_conversation(api, title="a", project_id=pid, tags=["urgent", "q3"])
    b = new_conversation(api, title="b", tags=["q3"])
    c = new_conversation(api, title="c")
    assert a["project_id"] == pid and a["tags"] == ["q3", "urgent"] and a["model"] == "demo/echo"
    listed = api.get("/conversations", query_string={"project_id": pid}).get_json()["items"]
    assert [x["id"] for x in listed] == [a["id"]]
    loose = api.get("/conversations", query_string={"loose": "true"}).get_json()["items"]
    assert {x["id"] for x in loose} == {b["id"], c["id"]}
    tagged = api.get("/conversations", query_string={"tag": "q3"}).get_json()["items"]
    assert {x["id"] for x in tagged} == {a["id"], b["id"]}
    assert {x["tags"] == [] for x in tagged} == {False}
    assert_error(api.get("/conversations", query_string={"tag": "nope"}), 404, "not_found")
    # PATCH moves and retags; the tag no conversation uses any more is gone
    moved = api.patch(f"/conversations/{c['id']}", json={"project_id": pid, "tags": ["later"]})
    assert moved.get_json()["project_id"] == pid and moved.get_json()["tags"] == ["later"]
    api.patch(f"/conversations/{a['id']}", json={"tags": ["q3"]})
    with app.app_context():
        assert set(db.session.scalars(select(Tag.name))) == {"q3", "later"}
    assert api.patch(f"/projects/{pid}", json={"name": "Job"}).get_json()["name"] == "Job"
    assert_error(api.patch(f"/projects/{pid}", json={"name": " "}), 400, "invalid_input")
    assert_error(
        api.patch(f"/conversations/{c['id']}", json={"tags": ["x" * 51]}), 400, "invalid_input"
    )
    assert api.delete(f"/projects/{pid}").status_code == 204
    after = api.get("/conversations").get_json()["items"]
    assert len(after) == 3 and {x["project_id"] for x in after} == {None}
    assert_error(api.get(f"/projects/{pid}"), 404, "not_found")


def test_another_users_project_and_tag_pages_are_404(app, client):
    sign_up(client, "ada@example.com")
    pid = _project(client, "Private")
    cid = start_conversation(client, "mine")
    wait_for_runs(app)
    post(client, f"/c/{cid}/tags", {"tags": "secret"})
    post(client, "/logout")
    sign_up(client, "bob@example.com")
    own = start_conversation(client, "bob's")
    wait_for_runs(app)
    assert client.get(f"/projects/{pid}").status_code == 404
    assert post(client, f"/projects/{pid}", {"name": "x"}).status_code == 404
    assert post(client, f"/projects/{pid}/delete").status_code == 404
    assert post(client, f"/c/{own}/project", {"project_id": pid}).status_code == 404
    assert post(client, "/c", {"content": "in", "project_id": pid}).status_code == 404
    assert client.get(f"/?project={pid}").status_code == 404
    assert client.get("/?tag=secret").status_code == 404
    assert post(client, f"/c/{cid}/tags", {"tags": "x"}).status_code == 404
    assert post(client, f"/c/{cid}/project", {"project_id": ""}).status_code == 404
    assert _conversation(app, own).project_id is None


def test_tags_from_the_header_filter_the_sidebar_and_search(app, user_client):
    a = start_conversation(user_client, "Apples and pears")
    b = start_conversation(user_client, "Apples and plums")
    wait_for_runs(app)
    saved = post(user_client, f"/c/{a}/tags", {"tags": "fruit, #Work , fruit"}, htmx=True)
    html = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "#fruit" in html and "#Work" in html
    bad = post(user_client, f"/c/{b}/tags", {"tags": "y" * 51}, htmx=True)
    assert bad.status_code == 400 and "over 50 characters" in bad.get_data(as_text=True)
    page = user_client.get(f"/c/{b}").get_data(as_text=True)
    assert '<option value="fruit">' in page  # the suggestions are my tags
    filtered = _sidebar(user_client, "/?tag=fruit")
    assert "Apples and pears" in filtered and "Apples and plums" not in filtered
    found = _results(user_client, "/search?q=apples&tag=fruit")
    assert "pears" in found and "plums" not in found
    assert user_client.get("/search?q=apples&tag=nope").status_code == 404
    # the tag's last use gone, the tag goes
    post(user_client, f"/c/{a}/tags", {"tags": "Work"})
    with app.app_context():
        assert list(db.session.scalars(select(Tag.name))) == ["Work"]


def test_search_filters_by_project(app, user_client):
    pid = _project(user_client, "Kitchen")
    response = post(user_client, "/c", {"content": "Soup recipe", "project_id": pid})
    assert response.status_code == 303
    start_conversation(user_client, "Soup history")
    wait_for_runs(app)
    found = _results(user_client, f"/search?q=soup&project={pid}")
    assert "recipe" in found and "history" not in found


def test_a_projects_instructions_reach_the_provider(make_app, upstream):
    app = make_app(**compat.upstream_config(upstream))
    user_client = app.test_client()
    sign_up(user_client)
    pid = _project(
        user_client, "Poetry", instructions="Always answer in verse.", default_model=compat.MODEL
    )
    upstream.queue(compat.text_reply())
    response = post(user_client, "/c", {"content": "Hello", "project_id": pid})
    assert response.status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert sent["model"] == compat.MODEL.split("/", 1)[1]
    assert sent["messages"][0] == {"role": "system", "content": "Always answer in verse."}
    # with a conversation's own system prompt, both, the conversation's first
    cid = response.headers["Location"].rsplit("/", 1)[1]
    post(user_client, f"/c/{cid}/settings", {"model": compat.MODEL, "system_prompt": "Be kind."})
    upstream.queue(compat.text_reply())
    post(user_client, f"/c/{cid}/messages", {"content": "Again"})
    wait_for_runs(app)
    system = upstream.posts()[-1]["json"]["messages"][0]
    assert system["content"] == "Be kind.\n\nAlways answer in verse."


def test_migration_0013_round_trips_with_data(app, ctx):
    """From 0011 with a conversation in it: the upgrade adds projects, tags and shares, the
    conversation loose; the downgrade drops them and keeps the conversation."""
    from .test_search import add_conversation, make_user

    ada = make_user()
    c = add_conversation(ada, "Before", [{"role": "user", "content": "Hello"}])
    cid, user_id = c.id, ada.id
    db.session.commit()
    db.session.remove()
    downgrade(directory=FOLDER, revision="0011")
    names = db.session.execute(text("SELECT title FROM conversations")).scalars().all()
    assert names == ["Before"]
    db.session.remove()
    upgrade(directory=FOLDER)
    conversation = db.session.get(Conversation, cid)
    assert conversation.project_id is None and conversation.tags == []
    project = Project(user_id=user_id, name="P", id=uuid.uuid4())
    db.session.add(project)
    db.session.flush()
    conversation.project_id = project.id
    db.session.commit()
    db.session.remove()
    downgrade(directory=FOLDER, revision="0011")
    assert db.session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 1
    db.session.remove()
    upgrade(directory=FOLDER)
    assert db.session.get(Conversation, cid).project_id is None
    # the triggers of conversations survived (message_count follows messages)
    assert db.session.get(Conversation, cid).message_count == 1


def test_export_takes_one_project_and_import_brings_tags_and_project(app, api):
    import io
    import json
    import zipfile

    pid = api.post("/projects", json={"name": "Trip", "instructions": "Plan."}).get_json()["id"]
    inside = new_conversation(api, title="inside", project_id=pid, tags=["travel"])["id"]
    api.post(f"/conversations/{inside}/messages", json={"content": "Where to?"})
    new_conversation(api, title="outside")
    wait_for_runs(app)
    one = api.get("/export", query_string={"project": pid})
    docs = [json.loads(line) for line in one.get_data(as_text=True).splitlines() if line]
    assert [d["conversation"]["title"] for d in docs] == ["inside"]
    head = docs[0]["conversation"]
    assert head["tags"] == ["travel"] and "project_id" not in head
    assert head["project"] == {"name": "Trip", "instructions": "Plan.", "default_model": None}
    page = api.client.get(f"/export?format=zip&project={pid}")  # no session: sign-in redirect
    assert page.status_code in (302, 401)
    # another account imports it: its own project "Trip" is made, the tags too
    other = Api(app, api_token(app, "bob@example.com"))
    assert_error(other.get("/export", query_string={"project": pid}), 404, "not_found")
    upload = {"file": (io.BytesIO(one.get_data()), "export.ndjson")}
    imported = other.post("/import", data=upload, content_type="multipart/form-data")
    assert imported.status_code == 200, imported.get_data(as_text=True)
    [mine] = other.get("/conversations").get_json()["items"]
    [project] = other.get("/projects").get_json()["items"]
    assert mine["tags"] == ["travel"] and mine["project_id"] == project["id"] != pid
    assert project["name"] == "Trip" and project["instructions"] == "Plan."
    # a second import reuses the project of that name
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        doc = {**docs[0], "conversation": {**head, "id": str(uuid.uuid4())}}
        z.writestr("one.json", json.dumps(doc))
    again = {"file": (io.BytesIO(archive.getvalue()), "export.zip")}
    other.post("/import", data=again, content_type="multipart/form-data")
    assert len(other.get("/projects").get_json()["items"]) == 1


def test_a_conversation_page_in_a_project_opens_its_sidebar_entry(app, user_client):
    pid = _project(user_client, "Shed")
    response = post(user_client, "/c", {"content": "Tools to keep", "project_id": pid})
    cid = response.headers["Location"].rsplit("/", 1)[1]
    wait_for_runs(app)
    page = user_client.get(f"/c/{cid}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    entry = html.split('class="project', 1)[1].split("</details>", 1)[0]
    assert " open>" in entry and "Tools to keep" in entry
