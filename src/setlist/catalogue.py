"""Catalogues: the kinds of item the service recommends (artists, tracks, ...).

A catalogue is a kind of item with its own ids, names, links and attributes (a track's artist),
its own trained model and its own registered model in the registry. It is a concept of its own
so that serving, routes and metrics can say which kind of item they answer with, instead of
assuming artists. ``artists`` is the catalogue served before catalogues existed: it is always
listed, from ``settings.model_name``, and the routes without a catalogue in their path answer
from it (503 naming it when it has no champion; the other catalogues still answer). The
playlist routes answer from ``tracks``. Further catalogues are declared with
``SETLIST_CATALOGUES`` (see :func:`served_catalogues`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from setlist.config import Settings
from setlist.errors import ConfigError

DEFAULT_CATALOGUE = "artists"
TRACKS_CATALOGUE = "tracks"  # the catalogue the playlist routes answer from
CATALOGUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Nouns and links of the catalogues setlist knows; others take their name less a final "s".
_KNOWN: dict[str, tuple[str, str]] = {
    "artists": ("artist", "https://www.last.fm/music/{name}"),
    "tracks": ("track", ""),
}


@dataclass(frozen=True)
class Catalogue:
    """One catalogue: its name in routes and metrics, its noun, where its model is registered."""

    name: str
    noun: str
    registered_model: str
    link_template: str = ""  # "{id}"/"{name}" filled in; used where an item has no link

    def link(self, item_id: str, name: str, url: str = "") -> str | None:
        """The item's own link, else one made from the template, else None."""
        if url:
            return url
        if not self.link_template:
            return None
        return self.link_template.format(id=quote(item_id, safe=""), name=quote(name, safe=""))


def catalogue_for(name: str, registered_model: str) -> Catalogue:
    noun, link = _KNOWN.get(name, (name.removesuffix("s") or name, ""))
    return Catalogue(name, noun, registered_model, link)


def served_catalogues(settings: Settings, also: Iterable[str] = ()) -> tuple[Catalogue, ...]:
    """The catalogues to serve, ``artists`` first, from ``settings.catalogues``.

    The setting lists ``name`` or ``name=registered-model`` separated by commas, e.g.
    ``artists,tracks`` or ``artists,tracks=lastfm-tracks``. ``artists`` is served from
    ``settings.model_name`` unless named otherwise; another catalogue without a registered model
    is served from ``{model_name}-{name}``. ``artists`` is served even when not listed, and so
    is each catalogue named in ``also`` (those given a bundle folder).

    ``artists`` stays listed because the routes without a catalogue in their path answer from
    it; it no longer holds a service back: a catalogue whose champion (or folder) is missing
    answers 503 naming it on its own routes, and the service is ready once any catalogue is
    (``setlist serve --bundle tracks=DIR`` serves tracks alone, with ``SETLIST_CATALOGUES``
    ``artists,tracks`` both from the registry).
    """
    found: dict[str, Catalogue] = {}
    listed = [p.strip() for p in settings.catalogues.split(",")]
    named = {p.partition("=")[0].strip() for p in listed}
    for part in listed + [n for n in also if n not in named]:
        if not part:
            continue
        name, _, model = (s.strip() for s in part.partition("="))
        if not CATALOGUE_NAME.match(name) or name in found or (_ and not model):
            raise ConfigError(
                f"catalogues: bad or repeated entry {part!r} (use name or name=registered-model, "
                "names in lower case)",
                field="catalogues",
                value=settings.catalogues,
            )
        default = (
            settings.model_name if name == DEFAULT_CATALOGUE else f"{settings.model_name}-{name}"
        )
        found[name] = catalogue_for(name, model or default)
    artists = found.pop(DEFAULT_CATALOGUE, None) or catalogue_for(
        DEFAULT_CATALOGUE, settings.model_name
    )
    return (artists, *found.values())


def known_catalogues() -> tuple[str, ...]:
    """The catalogues setlist knows by name (each may have a champion of its own)."""
    return tuple(_KNOWN)


def with_catalogues(settings: Settings, names: Iterable[str]) -> Settings:
    """``settings`` with ``names`` added to the ``catalogues`` setting where not listed yet."""
    listed = [p.strip() for p in settings.catalogues.split(",") if p.strip()]
    have = {p.partition("=")[0].strip() for p in listed}
    extra = [n for n in names if n not in have]
    if not extra:
        return settings
    return settings.model_copy(update={"catalogues": ",".join([*listed, *extra])})
