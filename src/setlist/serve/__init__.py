"""The HTTP service, in three layers (each imports only those below it):

- :mod:`setlist.serve.api`: the HTTP face (app factory, routes, schemas, the fast path, limits,
  error bodies);
- :mod:`setlist.serve.runtime`: the running service (workers, loading and hot-swap, A/B arms,
  metrics, the events wiring);
- :mod:`setlist.serve.answer`: the answer itself (retrieval, ranking rules, explanations, moods,
  exploration), with no HTTP in it.
"""

from setlist.serve.api.app import create_app

__all__ = ["create_app"]
