"""The OpenAPI document states what the server enforces beyond the routes' own declarations.

- ``k`` in a query string states its maximum, the ``max_k`` setting;
- every operation with a body documents 400 (a body that is not JSON, on every route alike);
- with keys required (:mod:`setlist.serve.api.auth`), the security schemes (``X-API-Key`` and
  ``Authorization: Bearer``), each protected operation's ``security`` and scope, and its 401 and
  403; with a rate limit on, 429 on every operation it applies to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}
_METHODS = ("get", "post", "put", "patch", "delete")


def _response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _bound(schema: dict[str, Any], maximum: int) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option["maximum"] = min(maximum, option.get("maximum", maximum))


def install(
    app: FastAPI,
    required_scope: Callable[[str, str], str | None] | None,
    rate_limited: Callable[[str, str], bool],
    max_k: int | None = None,
) -> None:
    """Replace ``app.openapi`` by the document with the additions above (built once)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        for path, item in schema.get("paths", {}).items():
            for method in _METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for param in operation.get("parameters", []):
                    # k's bound is a setting (known at run time): the schema states it.
                    if max_k is not None and param.get("in") == "query" and param["name"] == "k":
                        _bound(param.get("schema", {}), max_k)
                if "requestBody" in operation:
                    responses.setdefault("400", _response("The body is not JSON."))
                scope = required_scope(method.upper(), path) if required_scope else None
                if scope is not None:
                    operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
                    operation["description"] = (
                        operation.get("description", "") + f"\n\nNeeds an API key with the "
                        f"`{scope}` scope."
                    ).strip()
                    responses.setdefault("401", _response("No API key, or an unknown one."))
                    responses.setdefault("403", _response(f"The key lacks the {scope} scope."))
                if rate_limited(method.upper(), path):
                    responses.setdefault("429", _response("Over the rate limit; see Retry-After."))
        if required_scope is not None:
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})
            components["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
