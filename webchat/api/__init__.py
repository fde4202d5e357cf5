"""The JSON API v1 under ``/api/v1``, described by the OpenAPI document at
``/api/v1/openapi.json``.

- :mod:`.base`: the ``api`` blueprint, the OpenAPI generator ``spec`` (spectree), ``responses``
- :mod:`.auth`: bearer token or session; ``current_api_user()``; ``public``
- :mod:`.errors`: the JSON error body; ``fail(status, message, fields=...)``
- :mod:`.schemas`: request and response models (pydantic)
- :mod:`.views`: the routes; :mod:`.stream`: the JSON flavour of a reply's stream
- :mod:`.porting`: the routes of search, export and import
- :mod:`.tokens`: API tokens and ``flask tokens``
"""

from __future__ import annotations

from flask import Flask

from ..files import api as files_api  # noqa: F401  (issue 14: POST /files, GET /files/{id})
from . import auth, errors, organise, porting, views  # noqa: F401  (they register the routes on bp)
from .base import bp, spec

__all__ = ["bp", "spec", "init_app"]

bp.before_request(auth.authenticate)
errors.register(bp)


def init_app(app: Flask) -> None:
    """Register the API on ``app``: its blueprint, exempt from the app-wide CSRF check (the
    API checks CSRF itself for session calls, see :mod:`.auth`)."""
    from ..extensions import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)
