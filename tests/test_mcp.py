"""MCP tool servers with durable approval, against real servers: mcp-server-time from PyPI over
stdio, and the suite's own MCPServer (tests/fakes/mcp_server.py) over stdio and Streamable HTTP.
The model is the recorded OpenAI tool call, replayed by the loopback upstream with the tool's
name and arguments rewritten."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from webchat.extensions import db
from webchat.mcp import approval, config, registry
from webchat.models import Message, Run, utcnow

from .conftest import fixture_path, post, sign_up, wait_for_runs
from .fakes.upstream import FakeUpstream, Reply, cassette_replies
from .test_api import API, Api, api_token
from .test_conversations import messages_of
from .test_providers import OPENAI_TOOLS, send, upstream_config

FAKE_SERVER = str(Path(__file__).parent / "fakes" / "mcp_server.py")
MODEL = "openai/gpt-4o-mini"


def tool_call_reply(name: str, arguments: dict, call_id: str) -> Reply:
    """The recorded OpenAI tool-call stream, calling ``name`` with ``arguments`` instead of
    ``multiply`` (the arguments in one fragment, the other fragments left empty)."""
    reply = cassette_replies(fixture_path(*OPENAI_TOOLS))[0]
    chunks, placed = [], False
    for raw in reply.chunks:
        text = raw.decode()
        if not text.startswith("data: {"):
            chunks.append(raw)
            continue
        body = json.loads(text[len("data: ") :])
        for choice in body.get("choices", []):
            for call in choice.get("delta", {}).get("tool_calls") or []:
                function = call.setdefault("function", {})
                if function.get("name"):
                    function["name"], call["id"], function["arguments"] = name, call_id, ""
                elif "arguments" in function:
                    function["arguments"] = "" if placed else json.dumps(arguments)
                    placed = True
        chunks.append(f"data: {json.dumps(body)}\n\n".encode())
    return Reply(status=reply.status, headers=reply.headers, chunks=chunks)


def answer_reply() -> Reply:
    """The recorded final answer of the same conversation (plain text)."""
    return cassette_replies(fixture_path(*OPENAI_TOOLS))[1]


def ask_model(app, client, upstream, tool: str, arguments: dict) -> tuple[str, list[Message]]:
    """A new conversation whose replayed model calls ``tool`` with ``arguments`` (then answers);
    returns its id and its messages once the run has stopped."""
    upstream.queue(tool_call_reply(tool, arguments, f"call_{tool}"), answer_reply())
    cid = send(client, f"Call {tool}", MODEL)
    wait_for_runs(app)
    return cid, messages_of(app, cid)


def follow_up(client, cid: str, content: str) -> None:
    response = post(client, f"/c/{cid}/messages", {"content": content})
    assert response.status_code == 303, response.get_data(as_text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server():
    """The suite's MCPServer over Streamable HTTP on loopback; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, FAKE_SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill()
    process.wait()


def write_config(tmp_path: Path, http_url: str | None = None) -> Path:
    servers: dict = {
        "time": {
            "command": sys.executable,
            "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
        },
        "faulty": {
            "command": sys.executable,
            "args": [FAKE_SERVER, "stdio"],
            "approval": {t: "allow" for t in ("crash", "hang", "broken", "big", "pixel", "echo")},
        },
    }
    if http_url:
        servers["web"] = {
            "url": http_url,
            "headers": {"Authorization": "Bearer ${WEBCHAT_TEST_MCP_TOKEN}"},
            "approval": {"big": "never"},
        }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def mcp_app(make_app, upstream, tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("WEBCHAT_TEST_MCP_TOKEN", "s3cret-token")
    app = make_app(
        **upstream_config(upstream),
        MCP_CONFIG=str(write_config(tmp_path, http_server)),
        MCP_CALL_TIMEOUT_MS=5_000,
    )
    yield app
    wait_for_runs(app)
    if "webchat.mcp.broker" in app.extensions:
        app.extensions["webchat.mcp.broker"].close()


def run_of(app, message_id) -> Run:
    with app.app_context():
        message = db.session.get(Message, message_id)
        run = db.session.get(Run, message.run_id)
        db.session.expunge(run)
        return run


def test_namespaced_names_fit_what_providers_accept():
    assert registry.namespaced("time", "get_current_time") == "time__get_current_time"
    assert registry.namespaced("a-b", "x.y z") == "a-b__x_y_z"
    long = registry.namespaced("server", "t" * 80)
    assert len(long) == 64 and long.startswith("server__ttt")
    assert long != registry.namespaced("server", "t" * 81)  # the hash keeps cut names apart


def test_config_is_validated_and_secrets_stay_out_of_the_public_view(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBCHAT_TEST_MCP_TOKEN", "s3cret-token")
    server = config.parse_server(
        "web",
        {"url": "http://x/mcp", "headers": {"Authorization": "Bearer ${WEBCHAT_TEST_MCP_TOKEN}"}},
    )
    assert server.resolved()["headers"] == {"Authorization": "Bearer s3cret-token"}
    assert "s3cret" not in json.dumps(server.public())
    failure = "401 for Authorization: Bearer s3cret-token"
    assert server.scrub(failure) == "401 for Authorization: Bearer ***"
    assert server.policy("anything") == "ask"
    for name, spec, words in [
        ("a__b", {"command": "x"}, "server name"),
        ("ok", {}, "either 'command'"),
        ("ok", {"command": "x", "url": "http://x"}, "either 'command'"),
        ("ok", {"url": "ftp://x"}, "http:// or https://"),
        ("ok", {"command": "x", "approval": {"t": "maybe"}}, "a policy is one of"),
    ]:
        with pytest.raises(config.ConfigError, match=words):
            config.parse_server(name, spec)


def test_allow_runs_the_stdio_time_server_and_the_reply_completes(mcp_app, upstream):
    """The "done when" walk: the model asks the time in Tokyo, the page shows the approval card
    (after a reload too), Allow runs mcp-server-time, and the answer streams in."""
    app = mcp_app
    client = app.test_client()
    sign_up(client)
    upstream.queue(
        tool_call_reply("time__get_current_time", {"timezone": "Asia/Tokyo"}, "call_tokyo"),
        answer_reply(),
    )
    cid = send(client, "What time is it in Tokyo?", MODEL)
    wait_for_runs(app)
    offered = [t["function"]["name"] for t in upstream.posts()[0]["json"]["tools"]]
    assert {"time__get_current_time", "time__convert_time", "faulty__echo", "web__echo"} <= set(
        offered
    )
    assert "calculate" in offered  # the built-ins are one more server of the registry
    user, call, waiting = messages_of(app, cid)
    assert call.tool_call["name"] == "time__get_current_time"
    assert waiting.role == "tool" and waiting.status == "awaiting_approval"
    assert waiting.meta["approval"]["server"] == "time"
    assert waiting.meta["approval"]["arguments"] == {"timezone": "Asia/Tokyo"}
    assert run_of(app, waiting.id).status == "awaiting_approval"
    assert len(upstream.posts()) == 1  # nothing more asked of the model while it waits
    page = client.get(f"/c/{cid}").get_data(as_text=True)  # a reload shows the card
    assert "Allow this tool call?" in page and "get_current_time" in page
    assert "tool-step" not in page  # the card takes the place of the call's step
    assert "&#34;timezone&#34;: &#34;Asia/Tokyo&#34;" in page or '"timezone": "Asia/Tokyo"' in page
    # sending another message meanwhile is refused: the call is decided first
    refused = post(client, f"/c/{cid}/messages", {"content": "hello?"}, htmx=True)
    assert refused.status_code == 409

    answered = post(client, f"/m/{waiting.id}/approval", {"decision": "allow"}, htmx=True)
    assert answered.status_code == 200 and "sse-connect" in answered.get_data(as_text=True)
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    result = messages[2]
    assert result.status == "complete" and result.tool_result["error"] is None
    assert '"timezone": "Asia/Tokyo"' in result.content and "+09:00" in result.content
    assert result.meta["approval"]["decision"] == "allow"
    assert messages[-1].status == "complete" and messages[-1].content
    assert run_of(app, result.id).status == "complete"
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "call_tokyo"
    assert "+09:00" in sent[-1]["content"]
    # a second decision (another tab) is refused: the call is not waiting any more
    again = post(client, f"/m/{waiting.id}/approval", {"decision": "deny"}, htmx=True)
    assert again.status_code == 409


def test_api_deny_then_allow_for_the_conversation_over_http(mcp_app, upstream):
    """Over Streamable HTTP (with a header from the environment): deny stores that the person
    declined and the model goes on; "allow for this conversation" lets the next call run at
    once."""
    app = mcp_app
    api = Api(app, api_token(app))
    conversation = api.post("/conversations", json={"model": MODEL}).get_json()
    cid = conversation["id"]
    upstream.queue(tool_call_reply("web__echo", {"text": "one"}, "call_1"), answer_reply())
    sent = api.post(f"/conversations/{cid}/messages", json={"content": "Echo one"})
    assert sent.status_code == 202, sent.get_json()
    wait_for_runs(app)
    page = api.get(f"/conversations/{cid}/messages").get_json()
    waiting = page["items"][-1]
    assert waiting["status"] == "awaiting_approval" and waiting["tool_name"] == "web__echo"
    assert waiting["metadata"]["approval"]["arguments"] == {"text": "one"}
    stream = api.get(f"/messages/{sent.get_json()['reply']['id']}/stream").get_data(as_text=True)
    done = json.loads(stream.split("event: done\n")[1].split("data: ", 1)[1].split("\n")[0])
    assert done["status"] == "awaiting_approval"
    assert done["message"]["status"] == "awaiting_approval"
    bad = api.post(f"/messages/{waiting['id']}/approval", json={"decision": "maybe"})
    assert bad.status_code == 400
    denied = api.post(f"/messages/{waiting['id']}/approval", json={"decision": "deny"})
    assert denied.status_code == 202
    wait_for_runs(app)
    declined = messages_of(app, cid)[2]
    assert declined.status == "complete" and "declined" in declined.tool_result["error"]
    tool_sent = upstream.posts()[1]["json"]["messages"][-1]
    assert tool_sent["role"] == "tool" and "declined" in tool_sent["content"]

    upstream.queue(tool_call_reply("web__echo", {"text": "two"}, "call_2"), answer_reply())
    api.post(f"/conversations/{cid}/messages", json={"content": "Echo two"})
    wait_for_runs(app)
    waiting = messages_of(app, cid)[-1]
    assert waiting.status == "awaiting_approval"
    allowed = api.post(f"/messages/{waiting.id}/approval", json={"decision": "allow_conversation"})
    assert allowed.status_code == 202
    wait_for_runs(app)
    assert messages_of(app, cid)[-2].content == "two"
    # the next call of that tool runs without asking
    upstream.queue(tool_call_reply("web__echo", {"text": "three"}, "call_3"), answer_reply())
    api.post(f"/conversations/{cid}/messages", json={"content": "Echo three"})
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.status for m in messages[-3:]] == ["complete"] * 3
    assert messages[-2].role == "tool" and messages[-2].content == "three"
    assert "approval" not in messages[-2].meta
    # another user's id is a 404
    other = Api(app, api_token(app, "eve@example.com"))
    assert (
        other.post(f"/messages/{waiting.id}/approval", json={"decision": "deny"}).status_code == 404
    )


def test_a_call_waiting_too_long_expires_and_the_model_goes_on(mcp_app, upstream):
    app = mcp_app
    client = app.test_client()
    sign_up(client)
    cid, messages = ask_model(app, client, upstream, "web__echo", {"text": "late"})
    waiting = messages[-1]
    assert approval.expire(app) == 0  # not old yet
    with app.app_context():  # as if it had waited past MCP_APPROVAL_EXPIRES_S
        past = utcnow() - timedelta(seconds=app.config["MCP_APPROVAL_EXPIRES_S"] + 1)
        db.session.execute(update(Message).where(Message.id == waiting.id).values(updated_at=past))
        db.session.commit()
    assert approval.expire(app) == 1
    wait_for_runs(app)
    messages = messages_of(app, cid)
    expired = messages[2]
    assert expired.meta["approval"]["decision"] == "expired"
    assert "Nobody approved this tool call in time" in expired.tool_result["error"]
    assert messages[-1].status == "complete"
    assert approval.expire(app) == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("crash", {}, "failed: MCPError: Connection closed"),
        ("hang", {"seconds": 30}, "did not answer within 3 s"),
        ("broken", {}, "the server broke on purpose"),
    ],
)
def test_server_faults_are_error_results_and_the_reply_goes_on(
    make_app, upstream, tmp_path, tool, arguments, expected
):
    app = make_app(
        **upstream_config(upstream),
        MCP_CONFIG=str(write_config(tmp_path)),
        MCP_CALL_TIMEOUT_MS=3_000 if tool == "hang" else 5_000,
    )
    client = app.test_client()
    sign_up(client)
    cid, (user, call, result, answer) = ask_model(
        app, client, upstream, f"faulty__{tool}", arguments
    )
    assert result.role == "tool" and expected in result.tool_result["error"]
    assert result.content.startswith("Error: ") and expected in result.content
    assert answer.status == "complete"
    # the server is started again on the next call
    upstream.queue(tool_call_reply("faulty__echo", {"text": "back"}, "call_back"), answer_reply())
    follow_up(client, cid, "Call echo")
    wait_for_runs(app)
    assert messages_of(app, cid)[-2].content == "back"
    app.extensions["webchat.mcp.broker"].close()


def test_large_results_are_cut_with_a_note_and_images_kept_as_parts(make_app, upstream, tmp_path):
    app = make_app(
        **upstream_config(upstream), MCP_CONFIG=str(write_config(tmp_path)), MCP_RESULT_CHARS=100
    )
    client = app.test_client()
    sign_up(client)
    cid, messages = ask_model(app, client, upstream, "faulty__big", {"chars": 5000})
    big = messages[2]
    assert big.content.startswith("0123456789" * 10)
    assert "[The result was cut: it had 5000 characters, only the first 100 are shown.]" in (
        big.content
    )
    assert upstream.posts()[1]["json"]["messages"][-1]["content"] == big.content
    upstream.queue(tool_call_reply("faulty__pixel", {}, "call_pixel"), answer_reply())
    follow_up(client, cid, "Pixel")
    wait_for_runs(app)
    pixel = messages_of(app, cid)[-2]
    assert pixel.content == "one red pixel\n\n[image image/png]"
    (part,) = pixel.tool_result["parts"]
    assert part["type"] == "image" and part["mime_type"] == "image/png"
    assert part["data"].startswith("iVBORw0KGgo")
    page = client.get(f"/c/{cid}").get_data(as_text=True)
    assert 'src="data:image/png;base64,iVBORw0KGgo' in page
    app.extensions["webchat.mcp.broker"].close()


def test_a_never_tool_is_refused_without_asking(mcp_app, upstream):
    app = mcp_app
    client = app.test_client()
    sign_up(client)
    _cid, messages = ask_model(app, client, upstream, "web__big", {"chars": 5})
    assert "its policy is never" in messages[2].tool_result["error"]
    assert messages[-1].status == "complete"


def _trigger_names() -> list[str]:
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    with db.engine.connect() as connection:
        return list(connection.execute(text(query)).scalars())


def test_migration_0014_widens_status_and_downgrade_ends_waiting_replies(ctx):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from .conftest import ROOT
    from .test_search import add_conversation, make_user

    folder = str(ROOT / "migrations")
    ada = make_user()
    conversation = add_conversation(ada, "Waiting", [{"role": "user", "content": "hi"}])
    db.session.commit()
    message_id = conversation.id
    db.session.remove()
    triggers = _trigger_names()
    downgrade(directory=folder, revision="0013")
    assert "mcp_servers" not in inspect(db.engine).get_table_names()
    upgrade(directory=folder)
    assert _trigger_names() == triggers  # those naming status were made again, the same
    assert "mcp_servers" in inspect(db.engine).get_table_names()
    columns = {c["name"]: c for c in inspect(db.engine).get_columns("messages")}
    if db.engine.dialect.name == "postgresql":
        assert columns["status"]["type"].length == 32
    user_message = db.session.scalars(
        select(Message).where(Message.conversation_id == message_id)
    ).one()
    user_message.status = "awaiting_approval"
    db.session.commit()
    waiting_id = user_message.id
    db.session.remove()
    downgrade(directory=folder, revision="0013")
    status = db.session.scalar(select(Message.status).where(Message.id == waiting_id))
    assert status == "interrupted"
    db.session.remove()
    upgrade(directory=folder)
    assert db.session.get(Message, waiting_id).content == "hi"
    assert API  # the API prefix the approval route lives under


def test_tool_picker_on_the_page_and_the_api_choose_the_servers(mcp_app, upstream):
    """A conversation's tools: all servers by default; the settings form and PATCH choose
    which; the model is offered only those servers' tools."""
    app = mcp_app
    api = Api(app, api_token(app))
    conversation = api.post("/conversations", json={"model": MODEL}).get_json()
    cid = conversation["id"]
    assert conversation["tools"] == ["webchat", "time", "faulty", "web"]
    bad = api.patch(f"/conversations/{cid}", json={"tools": ["time", "nope"]})
    assert bad.status_code == 400 and "No tool server named 'nope'" in bad.get_data(as_text=True)
    patched = api.patch(f"/conversations/{cid}", json={"tools": ["web", "time"]}).get_json()
    assert patched["tools"] == ["time", "web"]
    upstream.queue(answer_reply())
    api.post(f"/conversations/{cid}/messages", json={"content": "Which tools?"})
    wait_for_runs(app)
    offered = {t["function"]["name"] for t in upstream.posts()[-1]["json"]["tools"]}
    assert "time__get_current_time" in offered and "web__echo" in offered
    assert not any(n.startswith("faulty__") for n in offered) and "calculate" not in offered
    assert api.patch(f"/conversations/{cid}", json={"tools": None}).get_json()["tools"] == [
        "webchat",
        "time",
        "faulty",
        "web",
    ]

    client = app.test_client()
    sign_up(client, "eve@example.com")
    page_cid = send(client, "hello", "demo/echo")
    wait_for_runs(app)
    page = client.get(f"/c/{page_cid}").get_data(as_text=True)
    assert 'name="tools" value="time" checked' in page
    saved = post(
        client,
        f"/c/{page_cid}/settings",
        {"model": "demo/echo", "system_prompt": "", "tools_shown": "1", "tools": ["webchat"]},
        htmx=True,
    )
    assert saved.status_code == 200
    html = saved.get_data(as_text=True)
    assert 'value="webchat" checked' in html and 'value="time" checked' not in html
    refused = post(
        client,
        f"/c/{page_cid}/settings",
        {"model": "demo/echo", "system_prompt": "", "tools_shown": "1", "tools": ["bogus"]},
        htmx=True,
    )
    assert refused.status_code == 400 and "No tool server named" in refused.get_data(as_text=True)
    with app.app_context():
        from webchat.models import Conversation

        stored = db.session.get(Conversation, __import__("uuid").UUID(page_cid))
        assert stored.meta["tools"] == ["webchat"]


def test_settings_panel_and_cli_show_each_servers_state_and_no_secret(
    make_app, tmp_path, http_server, monkeypatch
):
    monkeypatch.setenv("WEBCHAT_TEST_MCP_TOKEN", "s3cret-token")
    path = write_config(tmp_path, http_server)
    servers = json.loads(path.read_text())
    servers["mcpServers"]["gone"] = {"command": "/nonexistent/mcp-server"}
    path.write_text(json.dumps(servers))
    app = make_app(MCP_CONFIG=str(path))
    client = app.test_client()
    sign_up(client)
    page = client.get("/settings/").get_data(as_text=True)
    assert 'hx-get="/settings/tools"' in page  # loaded after the page
    panel = client.get("/settings/tools", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "time__get_current_time" in panel and "web__echo" in panel and "calculate" in panel
    assert panel.count('class="badge ok"') == 4 and panel.count('class="badge failed"') == 1
    assert "No such file or directory" in panel
    assert "s3cret" not in panel
    result = app.test_cli_runner().invoke(args=["mcp", "list"])
    assert result.exit_code == 0, result.output
    assert "time (stdio:" in result.output and "- connected" in result.output
    assert "  time__get_current_time  [ask]" in result.output
    assert "  web__big  [never]" in result.output
    assert "gone (stdio: /nonexistent/mcp-server) - failed: RuntimeError" in result.output
    assert "s3cret" not in result.output
    if "webchat.mcp.broker" in app.extensions:
        app.extensions["webchat.mcp.broker"].close()


def test_users_add_http_servers_on_allowed_hosts_only(make_app, upstream, tmp_path, http_server):
    app = make_app(
        **upstream_config(upstream),
        MCP_CONFIG=str(write_config(tmp_path)),
        MCP_USER_HOSTS=["127.0.0.1"],
    )
    client = app.test_client()
    sign_up(client)
    refused = [
        ({"name": "mine", "url": "http://evil.example/mcp"}, "allowed host (127.0.0.1)"),
        ({"name": "mine", "url": "file:///etc/passwd"}, "allowed host"),
        ({"name": "time", "url": http_server}, "named &#39;time&#39; already"),
        ({"name": "bad_name", "url": http_server}, "1-32 letters"),
    ]
    for data, words in refused:
        response = post(client, "/settings/tools", data, htmx=True)
        assert response.status_code in (400, 403, 409), data
        assert words in response.get_data(as_text=True), data
    with app.app_context():
        from webchat.models import McpServer

        assert db.session.scalars(select(McpServer)).all() == []
    added = post(client, "/settings/tools", {"name": "mine", "url": http_server}, htmx=True)
    assert added.status_code == 200
    panel = added.get_data(as_text=True)
    assert "mine__echo" in panel and "Remove" in panel
    # the user's own conversations offer its tools, which ask before every call
    upstream.queue(tool_call_reply("mine__echo", {"text": "own"}, "call_own"), answer_reply())
    cid = send(client, "Echo own", MODEL)
    wait_for_runs(app)
    offered = {t["function"]["name"] for t in upstream.posts()[-1]["json"]["tools"]}
    assert "mine__echo" in offered and "time__get_current_time" in offered
    waiting = messages_of(app, cid)[-1]
    assert waiting.status == "awaiting_approval" and waiting.meta["approval"]["server"] == "mine"
    assert post(client, f"/m/{waiting.id}/approval", {"decision": "allow"}).status_code == 303
    wait_for_runs(app)
    assert messages_of(app, cid)[-2].content == "own"
    # another user neither sees it nor removes it
    other = app.test_client()
    sign_up(other, "eve@example.com")
    upstream.queue(answer_reply())
    send(other, "Which tools?", MODEL)
    wait_for_runs(app)
    offered = {t["function"]["name"] for t in upstream.posts()[-1]["json"]["tools"]}
    assert "time__get_current_time" in offered and not any(n.startswith("mine__") for n in offered)
    with app.app_context():
        server_id = db.session.scalars(select(McpServer.id)).one()
    for htmx in (False, True):
        assert post(other, f"/settings/tools/{server_id}/delete", htmx=htmx).status_code == 404
    removed = post(client, f"/settings/tools/{server_id}/delete", htmx=True)
    assert removed.status_code == 200 and "mine__echo" not in removed.get_data(as_text=True)
    app.extensions["webchat.mcp.broker"].close()


def test_without_allowed_hosts_users_add_no_server(app, client):
    sign_up(client)
    response = post(client, "/settings/tools", {"name": "x", "url": "http://127.0.0.1:1/mcp"})
    assert response.status_code == 403
    panel = client.get("/settings/tools", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Add a server of your own" not in panel


def test_stopping_a_reply_that_awaits_approval_ends_it_without_the_call(mcp_app, upstream):
    app = mcp_app
    api = Api(app, api_token(app))
    cid = api.post("/conversations", json={"model": MODEL}).get_json()["id"]
    upstream.queue(tool_call_reply("web__echo", {"text": "never"}, "call_stop"), answer_reply())
    reply = api.post(f"/conversations/{cid}/messages", json={"content": "Echo"}).get_json()
    wait_for_runs(app)
    waiting = messages_of(app, cid)[-1]
    assert waiting.status == "awaiting_approval"
    # sending, editing or regenerating meanwhile is refused: the call is decided first
    refused = api.post(f"/conversations/{cid}/messages", json={"content": "and?"})
    assert refused.status_code == 409 and "waiting for your approval" in refused.get_data(
        as_text=True
    )
    stopped = api.post(f"/messages/{reply['reply']['id']}/cancel")
    assert stopped.status_code == 202
    messages = messages_of(app, cid)
    assert [m.status for m in messages[-2:]] == ["cancelled", "cancelled"]
    assert run_of(app, waiting.id).status == "cancelled"
    again = api.post(f"/messages/{waiting.id}/approval", json={"decision": "allow"})
    assert again.status_code == 409
    assert len(upstream.posts()) == 1  # the model was not asked again
    upstream.queue(answer_reply())
    assert api.post(f"/conversations/{cid}/messages", json={"content": "Hi"}).status_code == 202
    wait_for_runs(app)
    assert messages_of(app, cid)[-1].status == "complete"


def test_api_lists_adds_and_removes_tool_servers(make_app, tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("WEBCHAT_TEST_MCP_TOKEN", "s3cret-token")
    app = make_app(
        MCP_CONFIG=str(write_config(tmp_path, http_server)), MCP_USER_HOSTS=["127.0.0.1"]
    )
    api = Api(app, api_token(app))
    listed = api.get("/tool-servers").get_json()["items"]
    assert [s["name"] for s in listed] == ["webchat", "time", "faulty", "web"]
    web = listed[-1]
    assert web["connected"] and web["transport"] == "http" and web["id"] is None
    assert {k: v for k, v in web["tools"][0].items() if k != "description"} == {
        "name": "echo",
        "qualified": "web__echo",
        "policy": "ask",
    }
    assert "s3cret" not in json.dumps(listed)
    refused = api.post("/tool-servers", json={"name": "x", "url": "http://evil.example/mcp"})
    assert refused.status_code == 403
    taken = api.post("/tool-servers", json={"name": "time", "url": http_server})
    assert taken.status_code == 409
    assert api.post("/tool-servers", json={"name": "x", "command": "sh"}).status_code == 400
    added = api.post("/tool-servers", json={"name": "mine", "url": http_server})
    assert added.status_code == 201
    mine = added.get_json()
    assert (
        mine["id"] and mine["connected"] and "mine__echo" in [t["qualified"] for t in mine["tools"]]
    )
    other = Api(app, api_token(app, "eve@example.com"))
    assert "mine" not in [s["name"] for s in other.get("/tool-servers").get_json()["items"]]
    assert other.delete(f"/tool-servers/{mine['id']}").status_code == 404
    assert api.delete(f"/tool-servers/{mine['id']}").status_code == 204
    assert api.delete(f"/tool-servers/{mine['id']}").status_code == 404
    app.extensions["webchat.mcp.broker"].close()
