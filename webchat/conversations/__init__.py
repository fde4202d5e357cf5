"""Conversations: the sidebar, the conversation page, sending, streaming, stop and retry."""

from .views import bp

__all__ = ["bp"]
