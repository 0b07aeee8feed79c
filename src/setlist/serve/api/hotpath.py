"""A shorter way in for the hot route, ``GET /v1/users/{user_id}/recommendations``.

FastAPI's routing and parameter validation cost about a quarter of this route's framework time
(the route is matched against every route, each parameter goes through pydantic). This ASGI
middleware, innermost of the app's, recognises the route's own common requests and calls the
route's endpoint directly with the parameters it has checked itself. It accepts only what the
route's declaration would accept unchanged (``k`` as plain digits, ``exclude`` ids and ``mood``
within their length bounds, no other parameter, at most one ``k`` and ``mood``); anything else
(a malformed value, an unknown parameter, HEAD) goes down the normal FastAPI path, which stays
the reference for validation, error bodies and the OpenAPI schema. The endpoint itself, with
every line of it (arms, metrics, exploration), runs either way; its errors go to the same
exception handlers. When the endpoint's signature no longer matches what this module fills in,
the short way turns itself off (logged) and every request takes the normal path. No other
route may match these paths (none does: the only other ``/v1/users/`` route ends in ``/history``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from setlist.serve.answer.ask import DEFAULT_K, MAX_ID_LENGTH, MAX_MOOD_LENGTH

log = logging.getLogger(__name__)

PREFIX = "/v1/users/"
SUFFIX = "/recommendations"
TEMPLATE = PREFIX + "{user_id:path}" + SUFFIX
PARAMETERS = ("request", "user_id", "k", "exclude", "mood")
_MAX_K_DIGITS = 9


class HotPathMiddleware:
    """Serves valid common requests of the recommendations route without FastAPI's router."""

    def __init__(self, app: ASGIApp, owner: FastAPI, router: APIRouter) -> None:
        self.app = app
        self.owner = owner
        self.router = router
        self._route: APIRoute | None = None
        self._resolved = False
        self.served = 0  # requests answered the short way

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX) and not scope.get("root_path"):
                route = self._route if self._resolved else self._resolve()
                params = parse_request(path, scope["query_string"]) if route else None
                if route is not None and params is not None:
                    await self._answer(route, params, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, route: APIRoute, params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.served += 1
        scope["route"], scope["endpoint"] = route, route.endpoint
        scope["path_params"] = {"user_id": params["user_id"]}
        request = Request(scope, receive)
        try:
            response: Response = await route.endpoint(request, **params)
        except Exception as exc:
            handler = _handler(self.owner, exc)
            if handler is None:
                raise  # as FastAPI does: the server error middleware answers (500)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

    def _resolve(self) -> APIRoute | None:
        """The route this middleware stands in for, if it still has the expected shape."""
        self._resolved = True
        for route in self.router.routes:
            if (
                isinstance(route, APIRoute)
                and route.path == TEMPLATE
                and "GET" in (route.methods or ())
            ):
                names = tuple(inspect.signature(route.endpoint).parameters)
                if names == PARAMETERS and inspect.iscoroutinefunction(route.endpoint):
                    self._route = route
                else:
                    log.warning("hot path off: %s takes %s, not %s", TEMPLATE, names, PARAMETERS)
                return self._route
        log.warning("hot path off: no route %s", TEMPLATE)
        return None

    @property
    def active(self) -> bool:
        """Whether requests may take the short way (resolved on the first request)."""
        return (self._route if self._resolved else self._resolve()) is not None


def parse_request(path: str, query_string: bytes) -> dict[str, Any] | None:
    """The endpoint's parameters for a request the route would accept as is, else None."""
    user_id = path[len(PREFIX) : len(path) - len(SUFFIX)]
    if not 1 <= len(user_id) <= MAX_ID_LENGTH:
        return None
    k: int | None = None
    mood: str | None = None
    exclude: list[str] = []
    # The same parsing as Starlette's QueryParams, which FastAPI reads the parameters from.
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "k" and k is None and value.isascii() and value.isdigit():
            if len(value) > _MAX_K_DIGITS or int(value) < 1:
                return None
            k = int(value)
        elif name == "exclude" and 1 <= len(value) <= MAX_ID_LENGTH:
            exclude.append(value)
        elif name == "mood" and mood is None and 1 <= len(value) <= MAX_MOOD_LENGTH:
            mood = value
        else:
            return None
    return {
        "user_id": user_id,
        "k": DEFAULT_K if k is None else k,
        "exclude": exclude or None,
        "mood": mood,
    }


def _handler(app: FastAPI, exc: Exception) -> Callable[..., Any] | None:
    """The app's handler for ``exc`` as FastAPI's exception middleware finds it (not 500s)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None
