"""Models of the HTTP API: ``...Public`` what clients see, ``...In`` what they send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from setlist.events.schema import StorableText
from setlist.serve.answer.ask import (
    DEFAULT_K,
    MAX_BATCH_USERS,
    MAX_BODY_EXCLUDE,
    MAX_BODY_K,
    MAX_ID_LENGTH,
    MAX_MOOD_LENGTH,
    MAX_SEEDS,
)

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), StorableText]
# The work of one batch request: users x k answers at most (413 over it).
MAX_BATCH_ITEMS = 20_000


class ItemScorePublic(BaseModel):
    item_id: str
    name: str
    score: float


class BecausePublic(BaseModel):
    item_id: str
    name: str
    contribution: float = Field(description="This heard item's share of the item's score.")


class RecommendedItemPublic(ItemScorePublic):
    propensity: float | None = Field(
        default=None, description="Probability that the serving policy shows this item."
    )
    because: list[BecausePublic] = Field(
        default_factory=list,
        description="Up to three heard items that contributed most, computed from the model.",
    )
    new_item: bool = Field(default=False, description="Placed by the new-item slot.")


class RecommendationsPublic(BaseModel):
    user_id: str
    model_version: str
    strategy: str = Field(
        description="personalized, personalized_online, mood (a mood's best artists for a "
        "listener without history), or popular_fallback"
    )
    items: list[RecommendedItemPublic]
    arm: str | None = Field(default=None, description="The A/B arm that answered.")
    mood: str | None = Field(default=None, description="The mood blended in, if any.")


class OnboardingIn(BaseModel):
    """A new listener's seed artists (ids or names)."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[Id] = Field(
        min_length=1, max_length=MAX_SEEDS, description="Seed artists: item ids or names."
    )
    k: StrictInt = Field(default=DEFAULT_K, ge=1, le=MAX_BODY_K, description="How many items.")
    exclude: list[Id] = Field(
        default_factory=list, max_length=MAX_BODY_EXCLUDE, description="Item ids never to return."
    )
    mood: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_MOOD_LENGTH), StorableText]
        | None
    ) = None


class OnboardingPublic(BaseModel):
    model_version: str
    strategy: str
    arm: str | None = None
    mood: str | None = None
    seeds: list[str] = Field(description="The seeds that matched an artist.")
    unknown_seeds: list[str] = Field(description="The seeds that matched nothing.")
    items: list[RecommendedItemPublic]


class BatchIn(BaseModel):
    """Several known or unknown users at once."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[Id] = Field(
        min_length=1, max_length=MAX_BATCH_USERS, description="Up to 1,000 user ids."
    )
    k: StrictInt = Field(
        default=DEFAULT_K,
        ge=1,
        le=MAX_BODY_K,
        description=f"How many items per user; len(user_ids) x k at most {MAX_BATCH_ITEMS:,}.",
    )
    exclude: list[Id] = Field(
        default_factory=list,
        max_length=MAX_BODY_EXCLUDE,
        description="Item ids never to return, to any of the users.",
    )


class BatchPublic(BaseModel):
    results: list[RecommendationsPublic]


class MoodItemPublic(BaseModel):
    item_id: str
    name: str


class MoodPublic(BaseModel):
    name: str
    description: str
    tags: list[str] = Field(description="The Last.fm tags that define the mood.")
    artists: int = Field(description="Artists of the catalogue carrying the mood.")
    examples: list[MoodItemPublic]


class MoodsPublic(BaseModel):
    model_version: str
    moods: list[MoodPublic]


class SimilarItemsPublic(BaseModel):
    item_id: str
    model_version: str
    items: list[ItemScorePublic]


class CataloguePublic(BaseModel):
    """One catalogue served: its kind of item, where its model comes from, whether it answers."""

    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(description="The catalogue's name in /v1/catalogues/{name}/... routes.")
    noun: str = Field(description="What one item is: artist, track, ...")
    registered_model: str = Field(description="The MLflow registered model it is served from.")
    ready: bool
    model_version: str | None = None
    model_type: str | None = None
    items: int | None = Field(default=None, description="Items in the served model.")
    problem: str | None = Field(default=None, description="Why it does not answer, if so.")


class CataloguesPublic(BaseModel):
    catalogues: list[CataloguePublic]


class CatalogueItemPublic(BaseModel):
    item_id: str
    name: str
    url: str | None = None
    attributes: dict[str, str] = Field(
        default_factory=dict, description="The item's attributes, e.g. a track's artist."
    )


class CatalogueItemsPublic(BaseModel):
    catalogue: str
    items: list[CatalogueItemPublic]


class ModelPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    version: str
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, float | None]
    data_fingerprint: str | None
    trained_at: datetime | None
    catalogues: list[CataloguePublic] = Field(
        default_factory=list, description="Every catalogue served; the fields above: artists."
    )


class HealthPublic(BaseModel):
    status: str


class ReadyPublic(BaseModel):
    status: str
    model_version: str
    catalogues: list[CataloguePublic] = Field(
        default_factory=list, description="Every catalogue served (ready once artists is)."
    )


class ErrorDetailPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None


class ErrorPublic(BaseModel):
    error: ErrorDetailPublic
