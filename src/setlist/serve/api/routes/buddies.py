"""``GET /v1/buddies?seed=...``: taste buddies of a new listener, from the artists they picked.

A listener of the training data gets theirs from ``GET /v1/users/{id}/buddies``
(:mod:`setlist.serve.api.routes.catalogue`); a new listener has only the artists picked in the
app, so their taste is those artists weighted as one play each, in the same log1p x IDF space
as every listener's (:func:`setlist.index.buddies.taste_vectors`), and their buddies are the
nearest listeners by the same hub-corrected cosine.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from fastapi import APIRouter, Query
from pydantic import Field, StringConstraints

from setlist.bundle import ModelBundle
from setlist.errors import NotFoundError
from setlist.index.buddies import nearest
from setlist.serve.answer.ask import MAX_ID_LENGTH
from setlist.serve.api.deps import StateDep
from setlist.serve.api.routes.catalogue import (
    _ERRORS,
    BuddiesPublic,
    BuddyPublic,
    ItemRefPublic,
    _cache,
    _taste,
)

router = APIRouter(prefix="/v1", tags=["catalogue"])
MAX_SEEDS = 100
N_SHARED = N_DISCOVERIES = 5


class SeedBuddiesPublic(BuddiesPublic):
    seeds: list[str] = Field(description="The seeds found in the catalogue (item ids).")
    unknown_seeds: list[str] = Field(description="Seeds that are no artist of the catalogue.")


def seed_vector(bundle: ModelBundle, rows: list[int]) -> sp.csr_matrix:
    """One row over the artists: each seed as one play, log1p x IDF weighted, L2-normalised."""
    n_users = max(bundle.seen.shape[0], 1)
    listeners = np.bincount(bundle.seen.indices, minlength=bundle.seen.shape[1])[rows]
    weights = np.log1p(1.0) * np.log((n_users + 1.0) / (listeners + 1.0))
    norm = float(np.linalg.norm(weights)) or 1.0
    cols = np.asarray(rows, dtype=np.int64)
    return sp.csr_matrix(
        (weights / norm, (np.zeros(len(rows), dtype=np.int64), cols)),
        shape=(1, bundle.seen.shape[1]),
    )


@router.get("/buddies", responses=_ERRORS)
def seed_buddies(
    state: StateDep,
    seed: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]],
        Query(max_length=MAX_SEEDS, description="Artist ids the listener picked (repeat it)."),
    ],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SeedBuddiesPublic:
    """Listeners nearest in taste to someone who loves the ``seed`` artists: ``shared`` the
    seeds the buddy heard (their most played first), ``discoveries`` the buddy's most played
    artists among the rest. Unknown seeds are listed and skipped; none known is a 404 naming
    ``seed``."""
    bundle, _ = state.require()
    rows: list[int] = []
    unknown: list[str] = []
    for item_id in seed:
        row = bundle.items.get(item_id)
        if row is None:
            unknown.append(item_id)
        elif row not in rows:
            rows.append(row)
    if not rows:
        message = f"no artist of the catalogue among the seeds {seed[:5]!r}"
        raise NotFoundError(message, field="seed")
    vectors, hubs = _cache.get(bundle, "buddies", _taste)
    found, sims = nearest(vectors, seed_vector(bundle, rows), k, hubs=hubs)
    ids, names = bundle.items.ids, bundle.item_names
    picked = np.asarray(rows, dtype=np.int64)

    def refs(cols: npt.NDArray[Any]) -> list[ItemRefPublic]:
        return [ItemRefPublic(item_id=str(ids[c]), name=str(names[c])) for c in cols.tolist()]

    items = []
    for user, sim in zip(found.tolist(), sims.tolist(), strict=True):
        heard = bundle.seen[user]
        order = heard.indices[np.argsort(-heard.data, kind="stable")]
        chosen = np.isin(order, picked)
        items.append(
            BuddyPublic(
                user_id=str(bundle.users.ids[user]),
                similarity=round(float(sim), 6),
                shared=refs(order[chosen][:N_SHARED]),
                discoveries=refs(order[~chosen][:N_DISCOVERIES]),
            )
        )
    return SeedBuddiesPublic(items=items, seeds=[str(ids[r]) for r in rows], unknown_seeds=unknown)
