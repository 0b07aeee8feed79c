"""Versioned folders of the organic playlist ranker: written by ``setlist organic train``, read
by the API at start.

``<organic_dir>/<version>/`` holds the ranker (:class:`setlist.index.organic_ranker.OrganicRanker`),
the playlists and their artists by linking key (linked to the served catalogue's names at load)
and ``meta.json`` (version, champion, figures). Versions are UTC times, so the newest sorts last;
a folder appears only once complete (written under a hidden name, then renamed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from setlist.errors import DataError
from setlist.index.organic import PlaylistTable
from setlist.index.organic_ranker import OrganicRanker

META_FILE = "meta.json"
PLAYLISTS_FILE = "playlists.parquet"
ARTISTS_FILE = "playlist_artists.parquet"
TOP_PICKS_META = b"setlist.top_picks"  # the top-picks table's Parquet metadata key


def save_organic(
    organic_dir: Path, ranker: OrganicRanker, table: PlaylistTable, meta: dict[str, Any]
) -> Path:
    """Write a new ``<organic_dir>/<version>/`` and return it."""
    version = time.strftime("v%Y%m%dT%H%M%SZ", time.gmtime())
    folder, n = organic_dir / version, 1
    while folder.exists():
        n += 1
        folder = organic_dir / f"{version}-{n}"
    tmp = organic_dir / f".{folder.name}.tmp"
    tmp.mkdir(parents=True, exist_ok=False)
    ranker.save(tmp)
    table.playlists.write_parquet(tmp / PLAYLISTS_FILE)
    table.artists.write_parquet(tmp / ARTISTS_FILE)
    (tmp / META_FILE).write_text(json.dumps({**meta, "version": folder.name}, indent=2))
    tmp.rename(folder)
    return folder


@dataclass(frozen=True)
class OrganicArtifact:
    folder: Path
    ranker: OrganicRanker
    table: PlaylistTable
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.folder.name))

    @property
    def champion(self) -> str:
        return str(self.meta.get("champion", "ranker"))


def latest_version(organic_dir: Path) -> Path | None:
    """The newest complete version folder under ``organic_dir`` (None: there is none)."""
    if not organic_dir.is_dir():
        return None
    found = sorted(p for p in organic_dir.iterdir() if (p / META_FILE).is_file())
    return found[-1] if found else None


def load_organic(folder: Path) -> OrganicArtifact:
    """A saved version folder (see :func:`save_organic`)."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise DataError(f"not an organic ranker folder: {folder} (no {META_FILE})", file=folder)
    table = PlaylistTable(
        pl.read_parquet(folder / PLAYLISTS_FILE), pl.read_parquet(folder / ARTISTS_FILE)
    )
    meta = json.loads(meta_path.read_text())
    return OrganicArtifact(folder, OrganicRanker.load(folder), table, meta)
