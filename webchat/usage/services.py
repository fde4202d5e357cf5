"""Usage of a reply as stored, its cost, and sums.

A reply's ``metadata.usage`` is ``{"input_tokens", "output_tokens", "cached_tokens",
"reasoning_tokens", "cost_usd"}``: token counts as the upstream reported them (None where it said
nothing; input includes cached prompt tokens, output includes reasoning), and the cost in US
dollars, None when unknown. The cost is, in order: the ``MODEL_PRICES`` config override for the
model id (USD per million tokens), the price the upstream itself reported (OpenRouter, xAI), or
the ``genai-prices`` database (looked up by the provider's base URL when one is configured, else
by the provider's name, or by ``PRICE_PROVIDERS``); a model none of them knows has no cost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..models import Conversation, Message, Role, User
from ..providers.base import Usage, split_model_id

log = logging.getLogger(__name__)

TOKEN_KEYS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
KEYS = (*TOKEN_KEYS, "cost_usd")


def usage_json(usage: Usage, model_id: str | None) -> dict[str, Any]:
    """``usage`` as stored in ``metadata.usage`` (see the module docstring), its cost priced
    for ``model_id`` (``provider/model``)."""
    stored: dict[str, Any] = {key: getattr(usage, key) for key in TOKEN_KEYS}
    stored["cost_usd"] = cost_usd(usage, model_id)
    return stored


def cost_usd(usage: Usage, model_id: str | None) -> float | None:
    """The cost of ``usage`` on ``model_id`` in USD (rounded to 10⁻⁹), or None when unknown."""
    counted = usage.input_tokens is not None or usage.output_tokens is not None
    override = (current_app.config.get("MODEL_PRICES") or {}).get(model_id or "")
    if override is not None and counted:
        return _priced(usage, override)
    if usage.cost_usd is not None:
        return round(usage.cost_usd, 9)
    if not model_id or not counted:
        return None
    try:
        provider, model = split_model_id(model_id)
    except ValueError:
        return None
    return _genai_price(usage, provider, model)


def _priced(usage: Usage, prices: dict[str, float]) -> float:
    """Cost from per-million-token prices ``{"input", "output", "cached"}`` (cached defaults to
    the input price)."""
    cached = usage.cached_tokens or 0
    fresh = max(0, (usage.input_tokens or 0) - cached)
    total = (
        fresh * prices.get("input", 0)
        + cached * prices.get("cached", prices.get("input", 0))
        + (usage.output_tokens or 0) * prices.get("output", 0)
    )
    return round(total / 1_000_000, 9)


def _genai_price(usage: Usage, provider: str, model: str) -> float | None:
    """The ``genai-prices`` price, or None when it knows no such model (or it fails)."""
    import genai_prices

    cfg = current_app.config
    named = (cfg.get("PRICE_PROVIDERS") or {}).get(provider)
    base_url = cfg.get(f"{provider.upper().replace('-', '_')}_BASE_URL")
    if not named and not base_url and provider not in ("openai", "anthropic"):
        return None
    values = {"input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0}
    if usage.cached_tokens:
        values["cache_read_tokens"] = usage.cached_tokens
    counted = genai_prices.Usage(**values)
    try:
        if named or not base_url:
            price = genai_prices.calc_price(counted, model, provider_id=named or provider)
        else:
            price = genai_prices.calc_price(counted, model, provider_api_url=base_url)
    except LookupError:
        return None
    except Exception:  # noqa: BLE001 - a price is a nicety; never fail a reply for it
        log.exception("pricing %s/%s failed", provider, model)
        return None
    return round(float(Decimal(price.total_price)), 9)


def _sum_columns() -> list[Any]:
    columns = [func.sum(Message.meta[("usage", key)].as_integer()).label(key) for key in TOKEN_KEYS]
    columns.append(func.sum(Message.meta[("usage", "cost_usd")].as_float()).label("cost_usd"))
    columns.append(func.count(Message.meta[("usage", "cost_usd")].as_float()).label("priced"))
    columns.append(func.count(Message.meta[("usage", "input_tokens")].as_integer()).label("n"))
    return columns


def _totals(row: Any) -> dict[str, Any]:
    """One row of sums as ``{input_tokens, …, cost_usd}``: zero tokens where nothing reported;
    cost None when no reply was priced."""
    out: dict[str, Any] = {key: int(getattr(row, key) or 0) for key in TOKEN_KEYS}
    out["cost_usd"] = round(float(row.cost_usd), 9) if row.priced else None
    return out


def empty() -> dict[str, Any]:
    """Sums before any reply: zero tokens, no known cost."""
    return {**{key: 0 for key in TOKEN_KEYS}, "cost_usd": None}


def add_usage(total: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """``total`` (sums, or None) with one step's ``usage`` added: tokens it reports summed, the
    cost summed once one is known (rounded to 10⁻⁹ USD). Returns a new dict."""
    out = {**empty(), **(total or {})}
    for key in TOKEN_KEYS:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] += value
    cost = usage.get("cost_usd")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        out["cost_usd"] = round((out["cost_usd"] or 0) + cost, 9)
    return out


def usage_of(metas: Iterable[Any]) -> dict[str, Any] | None:
    """The sums of the ``usage`` of these message metadata (dicts, or None), or None when none
    of them has usage."""
    total = None
    for meta in metas:
        if isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            total = add_usage(total, meta["usage"])
    return total


def conversation_usage(conversation: Conversation) -> dict[str, Any]:
    """The sums of the usage of every reply of the conversation, as kept on it (migration 0009,
    :func:`webchat.streaming.store.add_usage`): ``{input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_usd}``, tokens as ints, cost in USD or None when no reply has a known
    cost. Reads no message."""
    return {**empty(), **(conversation.usage or {})}


def user_usage(user: User) -> dict[str, Any]:
    """The user's usage over every reply of their conversations (Trash included, until purged):
    ``{"total": sums, "by_model": [(model id, sums)], "by_day": [("YYYY-MM-DD", sums)]}``, sums
    as :func:`conversation_usage` gives them, models by cost then tokens, days newest first (UTC
    days). Three aggregate queries, the JSON read by the database."""
    model = Message.meta["model"].as_string()
    day = func.date(Message.created_at)
    mine = (
        select(*_sum_columns())
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.user_id == user.id, Message.role == Role.ASSISTANT)
    )
    by_model = [
        (row.model or "unknown", _totals(row))
        for row in db.session.execute(mine.add_columns(model.label("model")).group_by(model))
    ]
    by_model.sort(key=lambda item: (-(item[1]["cost_usd"] or 0), -_tokens(item[1]), item[0]))
    by_day = [
        (str(row.day)[:10], _totals(row))
        for row in db.session.execute(
            mine.add_columns(day.label("day")).group_by(day).order_by(day.desc())
        )
    ]
    by_day = [(d, sums) for d, sums in by_day if _tokens(sums) or sums["cost_usd"]]
    by_model = [(m, sums) for m, sums in by_model if _tokens(sums) or sums["cost_usd"]]
    return {
        "total": _totals(db.session.execute(mine).one()),
        "by_model": by_model,
        "by_day": by_day,
    }


def _tokens(sums: dict[str, Any]) -> int:
    return int(sums["input_tokens"]) + int(sums["output_tokens"])
