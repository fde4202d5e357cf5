"""Accounts: sign up, sign in, sign out; the user loader of Flask-Login."""

from .views import bp

__all__ = ["bp"]
