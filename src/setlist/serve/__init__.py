"""The HTTP service: FastAPI app factory, routes, model state, errors and metrics."""

from setlist.serve.app import create_app

__all__ = ["create_app"]
