"""Providers by name, built from the app's configuration.

``get_provider("demo")`` returns the offline demo; other providers are registered when their
configuration is present (see the README's configuration section). Tests may register their own
with :func:`register`.
"""

from __future__ import annotations

from flask import Flask, current_app

from .base import Provider, ProviderError, split_model_id
from .demo import DemoProvider

__all__ = ["Provider", "ProviderError", "get_provider", "register", "init_app", "available_models"]

_KEY = "webchat.providers"


def init_app(app: Flask) -> None:
    """Build the providers that ``app.config`` enables; the demo is always there."""
    providers: dict[str, Provider] = {"demo": DemoProvider(delay_ms=app.config["DEMO_DELAY_MS"])}
    app.extensions[_KEY] = providers


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
