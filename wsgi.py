"""The WSGI entry point: ``gunicorn wsgi:app`` (see gunicorn.conf.py)."""

from webchat import create_app

app = create_app()
