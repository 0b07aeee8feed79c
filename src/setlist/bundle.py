"""A model bundle: a fitted model plus everything serving needs to answer with it.

The folder holds ``model/`` (the model's own artifact), ``bundle.npz`` (user and item ids, item
names and links, the training history as CSR for exclusion, item popularity for the fallback, and
the catalogue's tag counts as a CSR item x tag matrix with the tag names, which moods and
diversity are computed from, and optional ``attr_*`` arrays of item attributes, such as a track's
artist), ``bundle.json`` (metadata and the SHA-256 of ``bundle.npz``), for a playlist catalogue
``playlists.parquet`` (see :data:`PLAYLIST_COLUMNS`: the playlists the track catalogue was built
from, which the title model, ``GET /v1/playlists/{pid}`` and the playlist recommendations read),
for
models whose scores are dot products, ``index/`` (the vector index built at training time, with
its measured recall; see :mod:`setlist.index`), and ``listeners/`` (the index over listeners'
tastes that finds taste buddies, recall-checked against the exact pairing; see
:mod:`setlist.index.listeners`). ``bundle.npz`` also keeps the histories of
the listeners the training filter dropped (too few items for ``min_user_items``), over this
catalogue, apart from ``users``/``seen``: those stay exactly the model's rows, which the offline
top-k, the promotion gate and the service index by; the service folds these listeners in from
their history instead of treating them as strangers. It is what the registry stores as a model
version's artifact and what the service loads.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.arrays import sha256_file
from setlist.bundle_meta import BundleMeta
from setlist.errors import ArtifactError
from setlist.matrix import IdIndex, InteractionMatrix
from setlist.models.base import Recommender, load_model

if TYPE_CHECKING:
    from setlist.config import IndexConfig
    from setlist.index.base import VectorIndex
    from setlist.index.listeners import ListenerIndex
    from setlist.models.continuation import ContinuationConfig, Continuer

BUNDLE_FORMAT = 1
ATTR_PREFIX = "attr_"  # bundle.npz arrays of item attributes
PLAYLISTS_FILE = "playlists.parquet"
#: The bundle's playlist table: one row per playlist, ``pid`` a string (the model's user id for a
#: training playlist), ``tracks`` the playlist's track ids in playlist order.
PLAYLIST_COLUMNS: dict[str, pl.DataType] = {
    "pid": pl.String(),
    "name": pl.String(),
    "num_followers": pl.Int64(),
    "tracks": pl.List(pl.String()),
}


@dataclass
class ModelBundle:
    model: Recommender
    users: IdIndex
    items: IdIndex
    item_names: npt.NDArray[np.str_]
    item_urls: npt.NDArray[np.str_]
    seen: sp.csr_matrix
    popularity: npt.NDArray[np.float32]
    meta: BundleMeta = field(default_factory=BundleMeta)
    # Catalogue tags (items x tags, counts) and their names; empty where the source has none.
    item_tags: sp.csr_matrix | None = None
    tag_names: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, dtype=np.str_))
    index: VectorIndex | None = None
    #: Listeners in the training data whose history was too short to train on, and their raw
    #: counts over this catalogue (rows of ``untrained_seen``); no model row exists for them.
    untrained_users: IdIndex = field(default_factory=lambda: IdIndex([]))
    untrained_seen: sp.csr_matrix | None = None
    # Per-item attributes of the catalogue (a track's artist id), one string per item; optional.
    item_attributes: dict[str, npt.NDArray[np.str_]] = field(default_factory=dict)
    #: The playlists behind a playlist catalogue (:data:`PLAYLIST_COLUMNS`); None for others.
    playlists: pl.DataFrame | None = None
    #: The index over listeners' tastes that finds taste buddies; None: exact search.
    listeners: ListenerIndex | None = None

    @property
    def catalogue(self) -> str | None:
        """The catalogue trained for; None in bundles made before catalogues."""
        return self.meta.catalogue

    @classmethod
    def build(
        cls,
        model: Recommender,
        train: InteractionMatrix,
        items_meta: pl.DataFrame,
        meta: BundleMeta,
        item_tags: pl.DataFrame | None = None,
        index_config: IndexConfig | None = None,
        untrained: InteractionMatrix | None = None,
        playlists: pl.DataFrame | None = None,
    ) -> ModelBundle:
        """Bundle a model fitted on ``train`` with names/links from ``items_meta``.

        ``item_tags`` (columns item, tag, count) is kept for moods and diversity; with
        ``index_config`` a vector index is built for factor models and its recall checked;
        ``untrained`` (over the same catalogue) holds the listeners the training filter dropped;
        ``playlists`` (:data:`PLAYLIST_COLUMNS`) makes it a playlist catalogue's bundle.
        """
        lookup = items_meta.unique("item", keep="first")
        frame = pl.DataFrame({"item": train.items.ids.tolist()}, schema={"item": pl.String})
        named = frame.join(lookup, on="item", how="left", maintain_order="left")
        names = named.get_column("name").fill_null(named.get_column("item")).to_numpy()
        urls = named.get_column("url").fill_null("").to_numpy()
        binary = (train.csr > 0).astype(np.float32)
        popularity = np.asarray(binary.sum(axis=0), dtype=np.float32).ravel()
        tags, tag_names = tag_matrix(item_tags, train.items)
        bundle = cls(
            model=model,
            users=train.users,
            items=train.items,
            item_names=names.astype(np.str_),
            item_urls=urls.astype(np.str_),
            seen=sp.csr_matrix(train.csr, dtype=np.float32),
            popularity=popularity,
            meta=meta,
            item_tags=tags,
            tag_names=tag_names,
            playlists=playlists,
        )
        if playlists is not None:
            check_playlists(playlists)
        if untrained is not None and len(untrained.users):
            if untrained.items.ids.tolist() != train.items.ids.tolist():
                raise ArtifactError("untrained histories must use the training catalogue's items")
            bundle.untrained_users = untrained.users
            bundle.untrained_seen = sp.csr_matrix(untrained.csr, dtype=np.float32)
        if index_config is not None:
            bundle.build_index(index_config)
            bundle.build_listeners(index_config)
        return bundle

    def history(self, user_id: str) -> sp.csr_matrix | None:
        """A known listener's raw history (1 x items), trained or dropped by the filter; None
        for a listener the training data never had."""
        row = self.users.get(user_id)
        if row is not None:
            return self.seen[row]
        row = self.untrained_users.get(user_id)
        if row is None or self.untrained_seen is None:
            return None
        return self.untrained_seen[row]

    def build_index(self, config: IndexConfig) -> None:
        """Build the vector index for a factor model (no-op for others); records it in meta."""
        from setlist.index.build import build_index

        vectors = self.model.vectors()
        if vectors is None:
            self.index = None
            return
        users, items = vectors
        self.index = build_index(items, users, config)
        self.meta = replace(self.meta, index=self.index.describe())

    def build_listeners(self, config: IndexConfig) -> None:
        """Build the listener index of taste buddies over the training history (any model);
        records it in meta. None where there are too few listeners or it is switched off."""
        from setlist.index.listeners import ListenerIndex

        self.listeners = ListenerIndex.build(self.seen, config)
        described = None if self.listeners is None else self.listeners.describe()
        self.meta = replace(self.meta, listeners=described)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.model.save(path / "model")
        npz = path / "bundle.npz"
        np.savez(
            npz,
            users=self.users.ids,
            items=self.items.ids,
            item_names=self.item_names,
            item_urls=self.item_urls,
            seen_data=self.seen.data,
            seen_indices=self.seen.indices,
            seen_indptr=self.seen.indptr,
            popularity=self.popularity,
            **self._tag_arrays(),  # type: ignore[arg-type]
            **self._untrained_arrays(),  # type: ignore[arg-type]
            **{f"{ATTR_PREFIX}{k}": v for k, v in self.item_attributes.items()},  # type: ignore[arg-type]
        )
        if self.index is not None:
            self.index.save(path / "index")
        if self.listeners is not None:
            self.listeners.save(path / "listeners")
        doc: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "sha256": sha256_file(npz),
            "meta": self.meta.encode(),
        }
        if self.playlists is not None:
            self.playlists.write_parquet(path / PLAYLISTS_FILE)
            doc["playlists_sha256"] = sha256_file(path / PLAYLISTS_FILE)
        (path / "bundle.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))

    @classmethod
    def load(cls, path: Path) -> ModelBundle:
        """Load and check a bundle; a changed, truncated or inconsistent one is refused."""
        doc_path, npz = path / "bundle.json", path / "bundle.npz"
        try:
            doc = json.loads(doc_path.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {doc_path}: {exc}") from exc
        if doc.get("format") != BUNDLE_FORMAT:
            raise ArtifactError(f"{doc_path}: unsupported bundle format {doc.get('format')!r}")
        if not npz.exists() or sha256_file(npz) != doc.get("sha256"):
            raise ArtifactError(f"{npz}: SHA-256 does not match {doc_path} (changed or truncated)")
        model = load_model(path / "model")
        meta = BundleMeta.decode(doc.get("meta"))
        try:
            with np.load(npz, allow_pickle=False) as d:
                users, items = IdIndex(d["users"]), IdIndex(d["items"])
                seen = sp.csr_matrix(
                    (d["seen_data"], d["seen_indices"], d["seen_indptr"]),
                    shape=(len(users), len(items)),
                )
                bundle = cls(
                    model=model,
                    users=users,
                    items=items,
                    item_names=d["item_names"],
                    item_urls=d["item_urls"],
                    seen=seen,
                    popularity=d["popularity"].astype(np.float32),
                    meta=meta,
                )
                bundle._set_tag_arrays(
                    {name: d[name] for name in d.files if name.startswith("tag")}
                )
                bundle._set_untrained_arrays(
                    {name: d[name] for name in d.files if name.startswith("untrained")}
                )
                bundle.item_attributes = {
                    name.removeprefix(ATTR_PREFIX): d[name].astype(np.str_)
                    for name in d.files
                    if name.startswith(ATTR_PREFIX)
                }
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"cannot read {npz}: {exc}") from exc
        if (path / "index").is_dir():
            from setlist.index import load_index

            bundle.index = load_index(path / "index")
        if (path / "listeners").is_dir():
            from setlist.index.listeners import ListenerIndex

            bundle.listeners = ListenerIndex.load(path / "listeners", bundle.seen)
        bundle.playlists = _load_playlists(path / PLAYLISTS_FILE, doc.get("playlists_sha256"))
        bundle.check()
        return bundle

    def _tag_arrays(self) -> dict[str, npt.NDArray[Any]]:
        if self.item_tags is None:
            return {}
        tags = sp.csr_matrix(self.item_tags, dtype=np.float32)
        return {
            "tag_data": tags.data,
            "tag_indices": tags.indices,
            "tag_indptr": tags.indptr,
            "tag_names": self.tag_names,
        }

    def _set_tag_arrays(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        if "tag_names" not in arrays:
            return  # a bundle from before tags were kept: no moods, no tag diversity
        self.tag_names = arrays["tag_names"].astype(np.str_)
        self.item_tags = sp.csr_matrix(
            (arrays["tag_data"], arrays["tag_indices"], arrays["tag_indptr"]),
            shape=(len(self.items), len(self.tag_names)),
        )

    def _untrained_arrays(self) -> dict[str, npt.NDArray[Any]]:
        if self.untrained_seen is None or len(self.untrained_users) == 0:
            return {}
        seen = sp.csr_matrix(self.untrained_seen, dtype=np.float32)
        return {
            "untrained_users": self.untrained_users.ids,
            "untrained_data": seen.data,
            "untrained_indices": seen.indices,
            "untrained_indptr": seen.indptr,
        }

    def _set_untrained_arrays(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        if "untrained_users" not in arrays:
            return  # a bundle from before these listeners were kept: they are unknown
        self.untrained_users = IdIndex(arrays["untrained_users"])
        self.untrained_seen = sp.csr_matrix(
            (arrays["untrained_data"], arrays["untrained_indices"], arrays["untrained_indptr"]),
            shape=(len(self.untrained_users), len(self.items)),
        )

    def check(self) -> None:
        """Shapes agree between the model and the indexes, and one warm-up query answers."""
        n_items = len(self.items)
        if self.model.n_items_ != n_items or len(self.item_names) != n_items:
            raise ArtifactError(
                f"model has {self.model.n_items_} items, index has {n_items}, "
                f"names {len(self.item_names)}"
            )
        if len(self.popularity) != n_items:
            raise ArtifactError(f"popularity has {len(self.popularity)} entries for {n_items}")
        for name, values in self.item_attributes.items():
            if len(values) != n_items:
                raise ArtifactError(f"attribute {name!r} has {len(values)} entries for {n_items}")
        if self.playlists is not None:
            check_playlists(self.playlists)
        self._check_index()
        if len(self.users) > 0:
            rows = np.array([0], dtype=np.int64)
            ids, _ = self.model.recommend(rows, self.seen[rows], k=1)
            if ids.shape != (1, 1):
                raise ArtifactError("warm-up query returned a malformed answer")

    def _check_index(self) -> None:
        """The index covers exactly the model's item vectors and answers one query."""
        if self.index is None:
            return
        vectors = self.model.vectors()
        if vectors is None or self.index.n != len(self.items):
            raise ArtifactError(f"index holds {self.index.n} vectors for {len(self.items)} items")
        users, items = vectors
        if self.index.dim != items.shape[1]:
            raise ArtifactError(f"index has dimension {self.index.dim}, model {items.shape[1]}")
        probe = users[:1] if len(users) else items[:1]
        ids, _ = self.index.search(probe, 1)
        if ids.shape != (1, 1) or not 0 <= ids[0, 0] < len(self.items):
            raise ArtifactError("index warm-up query returned a malformed answer")


def check_playlists(frame: pl.DataFrame) -> None:
    """The playlist table has :data:`PLAYLIST_COLUMNS` with their types and unique pids."""
    for name, dtype in PLAYLIST_COLUMNS.items():
        if name not in frame.columns:
            raise ArtifactError(f"playlist table lacks column {name!r}")
        if frame.schema[name] != dtype:
            raise ArtifactError(f"playlist column {name!r} is {frame.schema[name]}, not {dtype}")
    if frame.get_column("pid").n_unique() != frame.height:
        raise ArtifactError("playlist table holds a pid more than once")


def _load_playlists(path: Path, digest: object) -> pl.DataFrame | None:
    if digest is None:
        return None  # not a playlist catalogue (or a bundle from before playlists)
    if not path.exists() or sha256_file(path) != digest:
        raise ArtifactError(f"{path}: SHA-256 does not match bundle.json (changed or missing)")
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def tag_matrix(
    item_tags: pl.DataFrame | None, items: IdIndex
) -> tuple[sp.csr_matrix | None, npt.NDArray[np.str_]]:
    """Items x tags CSR of tag counts over the catalogue (unknown items dropped), tag names.

    Tags are numbered by total count, most used first, so tag 0 is the catalogue's commonest.
    """
    if item_tags is None or item_tags.height == 0:
        return None, np.zeros(0, dtype=np.str_)
    frame = (
        item_tags.select(
            pl.col("item").cast(pl.String),
            pl.col("tag").cast(pl.String).str.strip_chars().str.to_lowercase(),
            pl.col("count").cast(pl.Float64),
        )
        .drop_nulls()
        .filter(pl.col("tag").str.len_chars() > 0, pl.col("count") > 0)
    )
    frame = frame.with_columns(pl.Series("row", items.rows(frame.get_column("item").to_list())))
    frame = frame.filter(pl.col("row") >= 0)
    if frame.height == 0:
        return None, np.zeros(0, dtype=np.str_)
    totals = (
        frame.group_by("tag")
        .agg(pl.col("count").sum())
        .sort(["count", "tag"], descending=[True, False])
    )
    names = totals.get_column("tag").to_numpy().astype(np.str_)
    lookup = {str(t): i for i, t in enumerate(names.tolist())}
    cols = np.fromiter((lookup[t] for t in frame.get_column("tag").to_list()), dtype=np.int64)
    csr = sp.csr_matrix(
        (
            frame.get_column("count").to_numpy().astype(np.float32),
            (frame.get_column("row").to_numpy(), cols),
        ),
        shape=(len(items), len(names)),
    )
    csr.sum_duplicates()
    return csr, names


def playlist_continuer(bundle: ModelBundle, config: ContinuationConfig | None = None) -> Continuer:
    """The :class:`Continuer` of a playlist catalogue's bundle, as the challenge evaluated it.

    The title model is rebuilt from the bundle's *training* playlists (its users, with their
    names from the playlist table; a playlist the table lacks gets no name), so held-out
    playlists kept in the table never vote; the artist back-off uses the ``artist`` attribute
    and the bundle's popularity. ``config`` defaults to the one recorded in the metadata
    (``extra["continuation"]``), else :class:`ContinuationConfig`'s defaults.
    """
    from setlist.models.continuation import ContinuationConfig, Continuer
    from setlist.models.title import TitleModel

    if config is None:
        recorded = bundle.meta.extra.get("continuation")
        config = (
            ContinuationConfig.from_params(recorded)
            if isinstance(recorded, dict)
            else ContinuationConfig()
        )
    title = None
    if bundle.playlists is not None and len(bundle.users):
        names = dict(
            zip(
                bundle.playlists.get_column("pid").to_list(),
                bundle.playlists.get_column("name").to_list(),
                strict=True,
            )
        )
        title = TitleModel([names.get(str(u)) or "" for u in bundle.users.ids], bundle.seen)
    return Continuer(
        bundle.model,
        title,
        config,
        item_artists=bundle.item_attributes.get("artist"),
        popularity=bundle.popularity,
    )
