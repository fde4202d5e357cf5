"""Administration: every account with its storage, disable / enable, one-time reset links, and
everyone's audit events. Admins only; anyone else gets a 404."""

from .views import bp

__all__ = ["bp"]
