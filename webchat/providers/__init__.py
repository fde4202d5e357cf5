"""Providers by name, built from the app's configuration.

``get_provider("demo")`` returns the offline demo; other providers are registered when their
configuration is present (see the README's configuration section). Tests may register their own
with :func:`register`.
"""

from __future__ import annotations

import os
import shlex
import shutil

from flask import Flask, current_app

from .base import Provider, ProviderError, split_model_id
from .demo import DemoProvider

__all__ = ["Provider", "ProviderError", "get_provider", "register", "init_app", "available_models"]

_KEY = "webchat.providers"


OPENAI_DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]


def init_app(app: Flask) -> None:
    """Build the providers that ``app.config`` enables; the demo is always there.

    ``openai`` is enabled by ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``, ``anthropic`` by
    ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_BASE_URL``), ``claude-code`` when
    ``CLAUDE_CODE_COMMAND`` names an executable that exists (``claude`` on PATH by default).
    """
    cfg = app.config
    providers: dict[str, Provider] = {"demo": DemoProvider(delay_ms=cfg["DEMO_DELAY_MS"])}
    shared = {
        "timeout_ms": cfg["PROVIDER_TIMEOUT_MS"],
        "max_retries": cfg["PROVIDER_MAX_RETRIES"],
        "models_cache_ms": cfg["MODELS_CACHE_MS"],
    }
    if cfg.get("OPENAI_API_KEY") or cfg.get("OPENAI_BASE_URL"):
        from .openai import OpenAIProvider

        base_url = cfg.get("OPENAI_BASE_URL")
        models = cfg.get("OPENAI_MODELS")
        listing = cfg.get("OPENAI_LIST_MODELS")
        providers["openai"] = OpenAIProvider(
            api_key=cfg.get("OPENAI_API_KEY"),
            base_url=base_url,
            models=(OPENAI_DEFAULT_MODELS if not base_url else []) if models is None else models,
            list_models=bool(base_url) if listing is None else bool(listing),
            send_tools=cfg.get("OPENAI_TOOLS", True),
            pdf_parts=not base_url
            if cfg.get("OPENAI_PDF_PARTS") is None
            else bool(cfg.get("OPENAI_PDF_PARTS")),
            **shared,
        )
    if cfg.get("ANTHROPIC_API_KEY") or cfg.get("ANTHROPIC_BASE_URL"):
        from .anthropic import AnthropicProvider

        providers["anthropic"] = AnthropicProvider(
            api_key=cfg.get("ANTHROPIC_API_KEY"),
            base_url=cfg.get("ANTHROPIC_BASE_URL"),
            models=cfg.get("ANTHROPIC_MODELS") or [],
            list_models=bool(cfg.get("ANTHROPIC_LIST_MODELS")),
            max_tokens=cfg.get("ANTHROPIC_MAX_TOKENS", 8192),
            **shared,
        )
    command = _claude_command(cfg.get("CLAUDE_CODE_COMMAND"))
    if command:
        from .claude_code import ClaudeCodeProvider

        providers["claude-code"] = ClaudeCodeProvider(
            command,
            models=cfg.get("CLAUDE_CODE_MODELS") or ["default"],
            extra_args=cfg.get("CLAUDE_CODE_ARGS") or [],
            cwd=cfg.get("CLAUDE_CODE_CWD") or os.path.join(app.instance_path, "claude-code"),
            timeout_ms=cfg["PROVIDER_TIMEOUT_MS"],
        )
    app.extensions[_KEY] = providers


def _claude_command(value: str | list[str] | None) -> list[str] | None:
    """The Claude Code command as a list, its executable resolved on PATH; None when absent."""
    if not value:
        return None
    parts = shlex.split(value) if isinstance(value, str) else list(value)
    executable = shutil.which(parts[0]) if parts else None
    return [executable, *parts[1:]] if executable else None


def register(app: Flask, provider: Provider) -> None:
    """Add or replace ``provider`` under its ``name``."""
    app.extensions[_KEY][provider.name] = provider


def get_provider(name: str) -> Provider:
    """The provider called ``name``. Raises :class:`ProviderError` when none is configured."""
    try:
        return current_app.extensions[_KEY][name]
    except KeyError:
        raise ProviderError(f"No provider named {name!r} is configured.") from None


def available_models() -> list[str]:
    """Every model id (``provider/model``) the configured providers offer, demo first."""
    ids: list[str] = []
    for name, provider in current_app.extensions[_KEY].items():
        try:
            ids.extend(f"{name}/{model}" for model in provider.models())
        except ProviderError:
            continue
    return ids


def resolve(model_id: str) -> tuple[Provider, str]:
    """The provider and the model name of ``model_id``. Raises :class:`ProviderError`."""
    try:
        name, model = split_model_id(model_id)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None
    return get_provider(name), model
