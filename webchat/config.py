"""Configuration: defaults, then ``instance/config.py``, then ``WEBCHAT_*`` environment variables.

The order follows Flask's own advice (``from_object`` → ``from_pyfile`` → ``from_prefixed_env``).
A plain ``DATABASE_URL`` is honoured when ``WEBCHAT_DATABASE_URL`` is unset, and the secret key is
generated once into ``instance/secret_key`` when none is configured, so no secret is in the code.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask


class Defaults:
    """Built-in defaults: the embedded setup (SQLite in the instance folder, demo model)."""

    DATABASE_URL: str | None = None  # None → sqlite:///<instance>/webchat.sqlite3
    REDIS_URL: str | None = None  # None → in-process notifications
    ALLOW_SIGNUP = True  # the first account can always sign up; this gates the rest
    MAX_MESSAGE_CHARS = 100_000  # characters in one user message
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # bytes in one request body (Flask's own limit)
    DEFAULT_MODEL = "demo/echo"
    DEMO_DELAY_MS = 40  # delay between two demo-model words, in ms
    FLUSH_INTERVAL_MS = 100  # at most this long between a delta arriving and being durable
    HEARTBEAT_INTERVAL_MS = 2_000  # an active run touches its heartbeat at least this often
    STALE_RUN_AFTER_MS = 15_000  # a run whose heartbeat is older than this is interrupted
    REAPER_INTERVAL_MS = 10_000  # how often each process looks for stale runs
    PROVIDER_TIMEOUT_MS = 120_000  # a provider silent for this long fails the run
    PROVIDER_MAX_RETRIES = 2  # SDK retries of a request that failed before its stream began
    MODELS_CACHE_MS = 300_000  # how long a provider's own model list is reused
    # OpenAI-compatible servers (OpenAI, Ollama, vLLM, llama.cpp, LM Studio): enabled by a key or
    # a base URL. Plain OPENAI_API_KEY / OPENAI_BASE_URL env vars are honoured too.
    OPENAI_API_KEY: str | None = None
    OPENAI_BASE_URL: str | None = None  # e.g. http://127.0.0.1:11434/v1 for Ollama
    OPENAI_MODELS: list[str] | None = None  # None → a few OpenAI models, or none with a base URL
    OPENAI_LIST_MODELS: bool | None = None  # add GET /models; None → only with a base URL
    OPENAI_TOOLS = True  # send tool definitions (False for models that reject them)
    OPENAI_PDF_PARTS: bool | None = None  # PDFs as file parts; None → only without a base URL
    ANTHROPIC_API_KEY: str | None = None  # plain ANTHROPIC_API_KEY env var honoured too
    ANTHROPIC_BASE_URL: str | None = None  # without /v1
    ANTHROPIC_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]
    ANTHROPIC_LIST_MODELS = True  # add GET /v1/models to ANTHROPIC_MODELS
    ANTHROPIC_MAX_TOKENS = 8192  # tokens per response (the Messages API requires a cap)
    CLAUDE_CODE_COMMAND: str | list[str] | None = "claude"  # enabled when found; None disables
    CLAUDE_CODE_MODELS = ["default"]  # "default" runs without --model; aliases like "sonnet" too
    CLAUDE_CODE_ARGS: list[str] = []  # appended to every call, e.g. ["--permission-mode", "plan"]
    CLAUDE_CODE_CWD: str | None = None  # None → <instance>/claude-code
    # Prices: MODEL_PRICES overrides the genai-prices database per model id, in USD per million
    # tokens, e.g. {"openai/llama3.1:8b": {"input": 0, "output": 0}} ("cached" optional);
    # PRICE_PROVIDERS names the genai-prices provider that prices a webchat provider's models
    # when its base URL does not say, e.g. {"openai": "deepseek"} behind a proxy.
    MODEL_PRICES: dict[str, dict[str, float]] = {}
    PRICE_PROVIDERS: dict[str, str] = {}
    TOOLS_ENABLED = True  # offer the built-in tools (webchat.tools) to the models
    TOOL_TIMEOUT_MS = 10_000  # a tool call running longer than this returns an error result
    TOOL_LOOP_LIMIT = 8  # rounds of tool calls in one reply before it is stopped
    # MCP tool servers (webchat.mcp): the operator's mcpServers file (None → <instance>/mcp.json)
    MCP_CONFIG: str | None = None
    MCP_CALL_TIMEOUT_MS = 30_000  # a call (or a server's start) longer than this is an error
    MCP_RESULT_CHARS = 20_000  # a result's text longer than this is cut, with a note
    MCP_APPROVAL_EXPIRES_S = 3_600  # a call waiting for approval longer than this is declined
    MCP_TOOLS_TTL_S = 60  # a server's tool list is asked again after this many seconds
    # Hosts whose Streamable HTTP MCP servers users may add in Settings ("*.example.com" covers
    # its subdomains); empty: users cannot add servers. Never a command: stdio is the operator's.
    MCP_USER_HOSTS: list[str] = []
    MCP_USER_SERVERS = 10  # servers one user may add
    STREAM_POLL_MS = 1_000  # an idle stream re-reads the database at least this often
    SSE_HEARTBEAT_MS = 15_000  # comment line on an idle stream, against proxy time-outs
    PAGE_SIZE = 50  # messages per page in the conversation view
    SIDEBAR_PAGE_SIZE = 50  # conversations per page in the sidebar
    TRASH_RETENTION_DAYS = 30  # days in Trash before a conversation is purged; 0 keeps it
    TITLE_GENERATION = True  # a real model titles a new conversation in the background
    IMPORT_MAX_BYTES = 512 * 1024 * 1024  # largest upload on the import page, in bytes
    # Files attached to messages (webchat.files)
    FILES_BACKEND = "folder"  # "folder": <instance>/files; "database": in the blobs table
    FILES_MAX_BYTES = 20 * 1024 * 1024  # largest file one upload takes, in bytes
    FILES_QUOTA_BYTES = 1024 * 1024 * 1024  # bytes of files one user may keep; 0: no quota
    FILES_MAX_IMAGE_PIXELS = 40_000_000  # larger images are refused (decompression bombs)
    FILES_MAX_TEXT_CHARS = 200_000  # text kept of a text file or PDF, in characters
    FILES_PDF_MAX_PAGES = 500  # pages of a PDF whose text is read
    FILES_UNATTACHED_HOURS = 24  # an upload no message uses is deleted by gc after this
    # Models that take images: fnmatch patterns of model ids
    VISION_MODELS = [
        "demo/*",
        "openai/gpt-4o*",
        "openai/gpt-4.1*",
        "openai/gpt-5*",
        "openai/o3*",
        "openai/o4*",
        "anthropic/*",
        "claude-code/*",
    ]
    # Abuse limits (webchat.limits), in the "limits" notation; "" switches one off.
    LOGIN_LIMIT = "10 per 15 minutes"  # failed sign-ins per account
    LOGIN_IP_LIMIT = "30 per 15 minutes"  # failed sign-ins per client IP
    SIGNUP_LIMIT = "10 per hour"  # sign-up attempts per client IP
    SEND_LIMIT = "20 per minute"  # messages sent (replies started) per user
    API_LIMIT = "600 per minute"  # API requests per token (or user)
    IMPORT_LIMIT = "20 per hour"  # imports per user
    SHARE_LIMIT = "30 per hour"  # share links created per user
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI: str | None = None  # None → REDIS_URL, else memory://
    PASSWORD_MIN_CHARS = 8  # shortest password accepted (OWASP ASVS asks 12)
    RESET_LINK_MAX_AGE_S = 86_400  # a password-reset link works this long, in seconds
    AUDIT_RETENTION_DAYS = 365  # audit events older than this are pruned; 0 keeps them
    LOG_FORMAT = "text"  # "json": JSON lines with request and user ids (webchat.logs)
    LOG_LEVEL = "INFO"  # level of webchat's own loggers with LOG_FORMAT "json"
    METRICS_ENABLED = False  # serve GET /metrics (Prometheus)
    METRICS_TOKEN: str | None = None  # Bearer token for /metrics; None → loopback clients only
    HTTPS = False  # served over HTTPS: Secure cookies and HSTS
    TRUSTED_PROXIES = 0  # reverse proxies in front whose X-Forwarded-* headers are trusted
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"


# Plain environment variables honoured when the WEBCHAT_* ones are unset (the names the SDKs and
# their documentation use); keys are read from here or the instance config, never stored.
PLAIN_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def normalize_database_url(url: str) -> str:
    """Return ``url`` with a PostgreSQL scheme pinned to the psycopg 3 driver.

    ``postgres://`` and ``postgresql://`` (as Heroku-style ``DATABASE_URL`` values give them) become
    ``postgresql+psycopg://``; other URLs are returned unchanged.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(instance: Path) -> str:
    """Read ``instance/secret_key``, creating it (32 random bytes, hex) on first use."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def load_config(app: Flask, test_config: dict | None = None) -> None:
    """Fill ``app.config`` from defaults, the instance folder, the environment and ``test_config``.

    ``test_config`` (a dict, from tests) replaces the instance file and the environment entirely.
    """
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_object(Defaults)
    if test_config is None:
        app.config.from_pyfile(str(instance / "config.py"), silent=True)
        app.config.from_prefixed_env("WEBCHAT")
        for key in ("DATABASE_URL", *PLAIN_ENV):
            if not app.config.get(key) and os.environ.get(key):
                app.config[key] = os.environ[key]
    else:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance)
    url = app.config.get("DATABASE_URL") or f"sqlite:///{instance / 'webchat.sqlite3'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(url)
