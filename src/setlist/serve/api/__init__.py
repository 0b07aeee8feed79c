"""The HTTP face of the service: app factory, routes, schemas, the fast path, limits, errors."""
