"""Settings of the signed-in user: API tokens (create, shown once; revoke)."""

from .views import bp

__all__ = ["bp"]
