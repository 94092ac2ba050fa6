"""WSGI entry point: ``gunicorn wsgi:app``."""

from publisher.app import create_app

app = create_app()
