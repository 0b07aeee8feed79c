"""Request shapes the routes' declarations let through but the service refuses, one rule for all.

- Ids in paths may hold any character (README), newlines included: Starlette's ``path``
  convertor (``.*``) does not match a newline, so ``/v1/users/a%0Ab/history`` fell through to a
  bare 404. The convertor is replaced, process-wide, by one that matches every character; it is
  registered when this module is imported (by :mod:`setlist.serve.api.deps`, before any route
  is declared).
- A query parameter that takes one value, given twice (``?k=3&k=5``), is refused with 422 naming
  it, where FastAPI would silently take the last one. Lists (``exclude``) repeat as documented.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, register_url_convertor

from setlist.errors import ValidationError


class AnyPathConvertor(PathConvertor):
    """Starlette's path convertor, newlines included (``.*`` stops at one)."""

    regex = r"[\s\S]*"


register_url_convertor("path", AnyPathConvertor())

_SCALARS: dict[int, tuple[APIRoute, frozenset[str]]] = {}


async def one_value_each(request: Request) -> None:
    """422 naming the parameter when a single-valued query parameter is given more than once."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.scope.get("query_string"):
        return
    names = _scalar_names(route)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in names:
            if name in seen:
                values = request.query_params.getlist(name)
                raise ValidationError(
                    f"{name}: given {len(values)} times; it takes one value",
                    field=name,
                    value=values[:5],
                )
            seen.add(name)


def _scalar_names(route: APIRoute) -> frozenset[str]:
    cached = _SCALARS.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    names = frozenset(_scalars_of(route.dependant))
    _SCALARS[id(route)] = (route, names)
    return names


def _scalars_of(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params if not _is_sequence(p.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _scalars_of(sub)
    return names


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    if origin is None:
        return False
    return (
        isinstance(origin, type)
        and issubclass(origin, Sequence | set | frozenset)
        and (origin is not str)
    )
