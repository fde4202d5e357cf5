"""Usage and cost: each reply's ``metadata.usage`` from wherever the server reports it, its cost
(the server's own price, genai-prices, or the config override), and the sums shown in the
conversation header and given by the API."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from webchat.extensions import db
from webchat.models import User

from . import test_providers_compat as compat
from .conftest import fixture_path, post, wait_for_runs
from .fakes.upstream import cassette_replies, chunk_file_reply
from .test_conversations import messages_of
from .test_providers import chat, upstream_config

app = compat.app  # the providers talk to the loopback upstream
upstream = compat.upstream
MODEL = compat.MODEL


def replies(parts: tuple[str, str]):
    path = fixture_path(*parts)
    return cassette_replies(path) if path.suffix == ".yaml" else [chunk_file_reply(path)]


# (recording, the step whose usage is checked, the usage stored for it)
CASES = {
    # in the last choice chunk, beside finish_reason; DeepSeek's cache-hit count and
    # completion_tokens_details
    "deepseek-usage-in-last-choice-chunk": (
        compat.DEEPSEEK,
        1,
        {"input_tokens": 374, "output_tokens": 61, "cached_tokens": 256, "reasoning_tokens": 17},
    ),
    # in a last chunk with empty choices; xAI's completion_tokens leave out the 196 reasoning
    # tokens (total 513 = 291 + 26 + 196), which are added back; its price in usd ticks
    "xai-usage-after-finish-reasoning-apart-price-in-ticks": (
        compat.XAI,
        1,
        {
            "input_tokens": 291,
            "output_tokens": 222,
            "cached_tokens": 290,
            "reasoning_tokens": 196,
            "cost_usd": 0.00013305,
        },
    ),
    # in the finish chunk and again in a trailing choices-[] chunk
    "groq-usage-twice": (
        compat.GROQ_KIMI,
        1,
        {"input_tokens": 207, "output_tokens": 55, "cached_tokens": None, "reasoning_tokens": None},
    ),
    # OpenRouter's own `cost` in its separate usage chunk
    "openrouter-cost-reported": (compat.OPENROUTER_REASONING, 1, None),
    # no usage at all
    "claude-compat-no-usage": (
        compat.CLAUDE_COMPAT,
        1,
        {"input_tokens": None, "output_tokens": None, "cached_tokens": None},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_usage_read_wherever_the_server_reports_it(app, user_client, upstream, case):
    parts, index, expected = CASES[case]
    if parts == compat.CLAUDE_COMPAT:
        upstream.queue(compat.sse_reply(parts))
    else:
        upstream.queue(*replies(parts))
    upstream.queue(compat.text_reply(), compat.text_reply())
    _, messages = chat(app, user_client, "Hello", MODEL)
    usage = messages[index].meta["usage"]
    assert set(usage) == {
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
    }
    if case == "openrouter-cost-reported":
        recorded = compat.recorded_chunks(parts, 0)[-1]["usage"]
        assert usage["cost_usd"] == recorded["cost"] and usage["cost_usd"] > 0
        assert usage["input_tokens"] == recorded["prompt_tokens"]
        return
    expected = {"cost_usd": None, **expected}  # the fake's URL is no provider genai-prices knows
    assert {k: usage[k] for k in expected} == expected


def test_cost_from_genai_prices_then_the_config_override(make_app, upstream):
    deepseek = upstream_config(
        upstream, OPENAI_MODELS=["deepseek-chat"], PRICE_PROVIDERS={"openai": "deepseek"}
    )
    app = make_app(**deepseek)
    client = app.test_client()
    from .conftest import sign_up

    sign_up(client)
    upstream.queue(*replies(compat.DEEPSEEK), compat.text_reply())
    _, (_, call, *_rest) = chat(app, client, "Weather?", "openai/deepseek-chat")
    priced = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=374, output_tokens=61, cache_read_tokens=256),
        "deepseek-chat",
        provider_id="deepseek",
    )
    assert call.meta["usage"]["cost_usd"] == round(float(Decimal(priced.total_price)), 9) > 0
    # a self-hosted model: the override's per-million prices, cached tokens at their own price
    override = make_app(
        **deepseek,
        MODEL_PRICES={"openai/deepseek-chat": {"input": 1.0, "output": 2.0, "cached": 0.5}},
    )
    client = override.test_client()
    sign_up(client, "eve@example.com")
    upstream.queue(*replies(compat.DEEPSEEK), compat.text_reply())
    _, (_, call, *_rest) = chat(override, client, "Weather?", "openai/deepseek-chat")
    assert call.meta["usage"]["cost_usd"] == pytest.approx((118 * 1 + 256 * 0.5 + 61 * 2) / 1e6)


def test_conversation_sums_in_the_api_the_header_and_on_hover(app, user_client, upstream):
    from webchat.api import tokens

    upstream.queue(*replies(compat.XAI), compat.text_reply())
    cid, _ = chat(app, user_client, "Weather in SF?", MODEL)
    upstream.queue(*replies(compat.OPENROUTER_REASONING))
    assert post(user_client, f"/c/{cid}/messages", {"content": "2+2?"}).status_code == 303
    wait_for_runs(app)
    replies_usage = [m.meta["usage"] for m in messages_of(app, cid) if m.role == "assistant"]
    assert len(replies_usage) == 3
    expected = {
        key: sum(u[key] or 0 for u in replies_usage)
        for key in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
    }
    costs = [u["cost_usd"] for u in replies_usage if u["cost_usd"] is not None]
    assert len(costs) == 2  # xAI's and OpenRouter's own prices; the text reply has none
    with app.app_context():
        ada = db.session.query(User).one()
        _row, token = tokens.create_token(ada, "tests")
        db.session.commit()
    body = user_client.get(
        f"/api/v1/conversations/{cid}", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert {k: body["usage"][k] for k in expected} == expected
    assert body["usage"]["cost_usd"] == pytest.approx(sum(costs))
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert f"{expected['input_tokens']:,} in / {expected['output_tokens']:,} out tokens" in page
    assert 'class="usage-total"' in page
    assert "$0.000133" in page  # xAI's reply: 0.00013305 USD, on hover


def test_usage_page_totals_by_model_and_by_day(app, user_client, upstream):
    from datetime import UTC, datetime

    from .conftest import sign_up

    upstream.queue(*replies(compat.XAI), compat.text_reply())
    cid, _ = chat(app, user_client, "Weather in SF?", MODEL)
    chat(app, user_client, "Hello", "demo/echo")  # the demo reports tokens, no price
    usage = [m.meta["usage"] for m in messages_of(app, cid) if m.role == "assistant"]
    page = user_client.get("/usage/").get_data(as_text=True)
    assert "<caption>By model</caption>" in page and "<caption>By day (UTC)</caption>" in page
    inputs = sum(u["input_tokens"] for u in usage)
    assert f'<td>{MODEL}</td><td class="num">{inputs:,}</td>' in page
    assert "<td>demo/echo</td>" in page
    assert f"<td>{datetime.now(UTC).date().isoformat()}</td>" in page
    assert "$0.000133" in page  # xAI's own price
    # another user sees none of it
    other = app.test_client()
    sign_up(other, "eve@example.com")
    assert "No reply has reported its usage yet." in other.get("/usage/").get_data(as_text=True)


def test_migration_0009_backfills_conversation_usage(ctx):
    """From the schema before (0008) with replies that carry usage: the upgrade sums them onto
    their conversation; the downgrade drops the sums and keeps the rest."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from webchat.models import Conversation

    from .conftest import ROOT
    from .test_search import add_conversation, make_user

    folder = str(ROOT / "migrations")
    steps = [
        {"input_tokens": 10, "output_tokens": 5, "cached_tokens": 2, "cost_usd": 0.25},
        {"input_tokens": 7, "output_tokens": None, "reasoning_tokens": 3, "cost_usd": None},
    ]
    ada = make_user()
    rows = [{"role": "user", "content": "hi"}]
    rows += [{"role": "assistant", "content": "hello", "meta": {"usage": u}} for u in steps]
    with_usage = add_conversation(ada, "Priced", rows).id
    without = add_conversation(ada, "Plain", [{"role": "user", "content": "hi"}]).id
    db.session.commit()
    db.session.remove()
    downgrade(directory=folder, revision="0008")
    assert "usage" not in {c["name"] for c in inspect(db.engine).get_columns("conversations")}
    upgrade(directory=folder)
    assert db.session.get(Conversation, with_usage).usage == {
        "input_tokens": 17,
        "output_tokens": 5,
        "cached_tokens": 2,
        "reasoning_tokens": 3,
        "cost_usd": 0.25,
    }
    assert db.session.get(Conversation, without).usage is None
    db.session.remove()
    downgrade(directory=folder, revision="0008")
    upgrade(directory=folder)
    assert db.session.get(Conversation, with_usage).title == "Priced"


def test_import_of_an_export_without_sums_adds_them_up(app, user_client, upstream):
    import io
    import json
    import uuid

    from sqlalchemy import select

    from webchat.models import Conversation

    from .conftest import sign_up

    upstream.queue(*replies(compat.XAI), compat.text_reply())
    cid, _ = chat(app, user_client, "Weather in SF?", MODEL)
    doc = json.loads(user_client.get(f"/c/{cid}/export?format=json").get_data())
    original = doc["conversation"].pop("usage")  # as an export from before migration 0009
    assert original["cost_usd"] == 0.00013305
    other = app.test_client()
    sign_up(other, "eve@example.com")
    data = {"file": (io.BytesIO(json.dumps(doc).encode()), "old.json")}
    post(other, "/import", data, content_type="multipart/form-data")
    with app.app_context():
        eve = db.session.scalars(select(User).where(User.email == "eve@example.com")).one()
        copy = db.session.scalars(select(Conversation).where(Conversation.user_id == eve.id)).one()
        assert copy.usage == original
        assert db.session.get(Conversation, uuid.UUID(cid)).usage == original


def test_replies_finishing_at_once_all_count(app, user_client):
    import threading
    import uuid

    from webchat.models import Conversation, Run
    from webchat.streaming import store

    cid, _ = chat(app, user_client, "Hello", "demo/echo")
    with app.app_context():
        runs = [r.id for r in db.session.query(Run).all()]
        before = db.session.get(Conversation, uuid.UUID(cid)).usage
    step = {"input_tokens": 3, "output_tokens": 2, "cost_usd": 0.5}

    def add_many() -> None:
        with app.app_context():
            try:
                for _ in range(20):
                    store.add_usage(runs[0], step)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=add_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        after = db.session.get(Conversation, uuid.UUID(cid)).usage
    assert after["input_tokens"] == before["input_tokens"] + 60 * 3
    assert after["output_tokens"] == before["output_tokens"] + 60 * 2
    assert after["cost_usd"] == 30.0  # the demo's own reply has no price
