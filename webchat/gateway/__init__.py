"""The recording gateway: OpenAI- and Anthropic-compatible endpoints under ``/v1`` whose every
call is stored as a conversation (see docs/architecture.md, "The gateway").

- :mod:`.canonical`: the canonical message form and the hash of a path
- :mod:`.services`: request → conversation (continued, branched or new) → run; wait; outcome
- :mod:`.openai_wire`, :mod:`.anthropic_wire`: the two wire formats, in and out
- :mod:`.views`: the routes, authenticated by API tokens
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("gateway", __name__, url_prefix="/v1")

from . import views  # noqa: E402,F401  (registers the routes on bp)


def init_app(app: Flask) -> None:
    """Register the gateway on ``app``, exempt from CSRF (bearer tokens only, no cookies)."""
    from ..extensions import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)
