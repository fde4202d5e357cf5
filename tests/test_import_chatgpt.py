"""ChatGPT's export: the real fixture files imported and checked against their mapping trees."""

from __future__ import annotations

import copy
import io
import json

from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Conversation
from webchat.porting import chatgpt

from .conftest import fixture_path
from .test_porting import CHATGPT, CHATGPT_MODERN, by_source, make_user, messages_of


def load(parts) -> list[dict]:
    return json.loads(fixture_path(*parts).read_text(encoding="utf-8"))


def import_data(user, data) -> chatgpt.ImportReport:
    return chatgpt.import_bytes(user, json.dumps(data).encode())


def conversation_of(source_id: str) -> Conversation:
    return db.session.scalars(
        select(Conversation).where(Conversation.meta["source_id"].as_string() == source_id)
    ).one()


def visible(node: dict) -> bool:
    message = node.get("message")
    if not message:
        return False
    hidden = (message.get("metadata") or {}).get("is_visually_hidden_from_conversation")
    return not hidden


def kept_ancestor(mapping: dict, node_id: str) -> str | None:
    parent = mapping[node_id].get("parent")
    while parent is not None and not visible(mapping[parent]):
        parent = mapping[parent].get("parent")
    return parent


def check_against_file(raw: dict, conversation: Conversation) -> None:
    """Every visible node became one message, under its nearest visible ancestor, at its time,
    with the right role, and tool traffic as tool calls and tool rows."""
    mapping = raw["mapping"]
    messages = messages_of(conversation.id)
    rows = by_source(messages)
    expected = {k for k, n in mapping.items() if visible(n)}
    assert set(rows) == expected and len(messages) == len(expected)
    for node_id in expected:
        node, row = mapping[node_id], rows[node_id]
        message = node["message"]
        parent = kept_ancestor(mapping, node_id)
        assert row.parent_id == (rows[parent].id if parent else None)
        if message.get("create_time"):
            assert abs(row.created_at.timestamp() - message["create_time"]) < 1e-5
        author = message["author"]["role"]
        recipient = message.get("recipient", "all")
        if author == "tool":
            assert row.role == "tool" and row.tool_name == message["author"]["name"]
            assert row.content and row.tool_result["result"] == row.content
            caller = parent  # the call this result answers: the nearest call above it
            while rows[caller].tool_call is None:
                caller = kept_ancestor(mapping, caller)
            assert row.tool_result["tool_call_id"] == rows[caller].tool_call["id"]
        elif author == "assistant" and recipient != "all":
            assert row.role == "assistant" and row.tool_call["name"] == recipient
            assert row.tool_call["arguments"]["code"] == message["content"]["text"]
        else:
            assert row.role == author
            parts = [p for p in message["content"].get("parts") or [] if isinstance(p, str)]
            text = "\n\n".join(p for p in parts if p)
            citations = (message.get("metadata") or {}).get("citations") or []
            for citation in citations:  # a marker became a link to its source
                marker = parts[0][citation["start_ix"] : citation["end_ix"]]
                assert f"]({citation['metadata']['url']})" in row.content
                assert marker not in row.content
            if not citations:
                assert row.content == text
            else:
                assert len(row.meta["sources"]) == len({c["metadata"]["url"] for c in citations})
            assert row.content_html is not None
    assert conversation.title == raw["title"]
    current = raw.get("current_node")
    if current:
        assert conversation.meta["current_message_id"] == str(rows[current].id)


def test_real_export_with_browsing_tools(ctx):
    user = make_user()
    data = load(CHATGPT)
    report = import_data(user, data)
    assert (report.conversations_created, report.messages, report.failed) == (2, 19, [])
    assert report.skipped == {"hidden node": 2}
    for raw in data:
        check_against_file(raw, conversation_of(raw["id"]))
    browsing = messages_of(conversation_of(data[0]["id"]).id)
    assert [m.role for m in browsing[:6]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "tool",
    ]
    assert browsing[2].tool_name == "browser" and "Volkswagen Transporter" in browsing[2].content
    assert browsing[1].meta["model"] == "gpt-4"
    quote = browsing[4]
    assert quote.meta["content_type"] == "tether_quote" and quote.meta["url"].startswith("https://")
    # a tool-using reply is one run: the calls, the results and the answer
    assert len({m.run_id for m in browsing[1:7]}) == 1 and browsing[0].run_id is None
    assert browsing[7].role == "user" and browsing[8].run_id != browsing[1].run_id
    code = messages_of(conversation_of(data[1]["id"]).id)
    assert "```" in code[-1].content_html or "<pre" in code[-1].content_html


def test_modern_export_with_a_corrupt_conversation(ctx):
    user = make_user()
    data = load(CHATGPT_MODERN)
    report = import_data(user, data)
    assert report.conversations_created == 2
    assert report.failed == [("#2 “Corrupted entry”", "no mapping of messages")]
    assert report.skipped == {"hidden node": 1}  # the custom-instructions context
    for raw in (data[0], data[2]):
        check_against_file(raw, conversation_of(raw["id"]))
    deploy = conversation_of(data[0]["id"])
    assert deploy.meta["source_model"] == "gpt-5-thinking"
    assert [m.content for m in messages_of(deploy.id)][:2] == [
        "How do I roll back the deploy?",
        "Run `helm rollback staging`.",
    ]


def test_reimport_adds_nothing_and_branches_are_kept(ctx):
    """The fixtures have no branches, so one is made from the real data: a regenerated answer
    (a second child of the user's message), with current_node on the new branch."""
    user = make_user()
    data = load(CHATGPT)
    import_data(user, data)
    again = import_data(user, data)
    assert (again.messages, again.conversations_unchanged, again.already_imported) == (0, 2, 19)

    raw = copy.deepcopy(data[1])
    raw["id"] = "branched"
    question_id = next(
        k
        for k, n in raw["mapping"].items()
        if (n.get("message") or {}).get("author", {}).get("role") == "user"
    )
    first_answer_id = raw["mapping"][question_id]["children"][0]
    regenerated = copy.deepcopy(raw["mapping"][first_answer_id])
    regenerated["id"] = "regenerated"
    regenerated["children"] = []
    regenerated["message"]["id"] = "regenerated"
    regenerated["message"]["create_time"] += 1000
    regenerated["message"]["content"]["parts"] = ["A second, regenerated answer."]
    raw["mapping"]["regenerated"] = regenerated
    raw["mapping"][question_id]["children"].append("regenerated")
    raw["current_node"] = "regenerated"
    import_data(user, [raw])
    conversation = conversation_of("branched")
    check_against_file(raw, conversation)
    rows = by_source(messages_of(conversation.id))
    siblings = [m for m in rows.values() if m.parent_id == rows[question_id].id]
    assert len(siblings) == 2
    assert conversation.meta["current_message_id"] == str(rows["regenerated"].id)


def test_whole_file_corrupt_is_an_error(ctx):
    user = make_user()
    for raw in (b"{not json", b'{"a": 1}'):
        try:
            chatgpt.import_file(user, io.BytesIO(raw))
        except chatgpt.Corrupt as exc:
            assert "JSON" in str(exc)
        else:
            raise AssertionError("a file that is not an export was accepted")
