"""A model bundle: a fitted model plus everything serving needs to answer with it.

The folder holds ``model/`` (the model's own artifact), ``bundle.npz`` (user and item ids, item
names and links, the training history as CSR for exclusion, item popularity for the fallback) and
``bundle.json`` (metadata and the SHA-256 of ``bundle.npz``). It is what the registry stores as a
model version's artifact and what the service loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.errors import ArtifactError
from setlist.matrix import IdIndex, InteractionMatrix
from setlist.models.base import Recommender, load_model, sha256_file

BUNDLE_FORMAT = 1


@dataclass
class ModelBundle:
    model: Recommender
    users: IdIndex
    items: IdIndex
    item_names: npt.NDArray[np.str_]
    item_urls: npt.NDArray[np.str_]
    seen: sp.csr_matrix
    popularity: npt.NDArray[np.float32]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        model: Recommender,
        train: InteractionMatrix,
        items_meta: pl.DataFrame,
        meta: dict[str, Any],
    ) -> ModelBundle:
        """Bundle a model fitted on ``train`` with names/links from ``items_meta``."""
        lookup = items_meta.unique("item", keep="first")
        frame = pl.DataFrame({"item": train.items.ids.tolist()}, schema={"item": pl.String})
        named = frame.join(lookup, on="item", how="left", maintain_order="left")
        names = named.get_column("name").fill_null(named.get_column("item")).to_numpy()
        urls = named.get_column("url").fill_null("").to_numpy()
        binary = (train.csr > 0).astype(np.float32)
        popularity = np.asarray(binary.sum(axis=0), dtype=np.float32).ravel()
        return cls(
            model=model,
            users=train.users,
            items=train.items,
            item_names=names.astype(np.str_),
            item_urls=urls.astype(np.str_),
            seen=sp.csr_matrix(train.csr, dtype=np.float32),
            popularity=popularity,
            meta=meta,
        )

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
        )
        doc = {"format": BUNDLE_FORMAT, "sha256": sha256_file(npz), "meta": self.meta}
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
                    meta=dict(doc.get("meta") or {}),
                )
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"cannot read {npz}: {exc}") from exc
        bundle.check()
        return bundle

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
        if len(self.users) > 0:
            rows = np.array([0], dtype=np.int64)
            ids, _ = self.model.recommend(rows, self.seen[rows], k=1)
            if ids.shape != (1, 1):
                raise ArtifactError("warm-up query returned a malformed answer")
