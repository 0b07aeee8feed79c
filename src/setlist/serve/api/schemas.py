"""Models of the HTTP API: ``...Public`` what clients see, ``...In`` what they send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from setlist.events.schema import JsonInt, StorableText
from setlist.serve.answer.ask import (
    DEFAULT_K,
    MAX_BATCH_USERS,
    MAX_BODY_EXCLUDE,
    MAX_BODY_K,
    MAX_CONTINUE_K,
    MAX_ID_LENGTH,
    MAX_MOOD_LENGTH,
    MAX_PLAYLIST_NAME,
    MAX_PLAYLIST_TRACKS,
    MAX_SEEDS,
)
from setlist.serve.answer.moods import MOOD_NAMES

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), StorableText]
# The work of one batch request: users x k answers at most (413 over it).
MAX_BATCH_ITEMS = 20_000


def printable_text(value: str) -> str:
    """No NUL and no lone surrogate (JSON allows both; no id or name holds them, and a lone
    surrogate cannot even be written back as UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("must not contain a lone surrogate (not valid Unicode text)")
    return value


CleanId = Annotated[Id, AfterValidator(printable_text)]


class ItemScorePublic(BaseModel):
    item_id: str
    name: str
    score: float


class BecausePublic(BaseModel):
    item_id: str = Field(description="The heard item (empty for a mood).")
    name: str = Field(description="The heard item's name, or the mood's.")
    contribution: float = Field(description="This heard item's (or the mood's) share of the score.")
    kind: Literal["item", "mood"] = Field(
        default="item",
        description="item: a heard item contributed; mood: the requested mood chose the item "
        "(it gave at least half of the score), listed first.",
    )


class RecommendedItemPublic(ItemScorePublic):
    propensity: float | None = Field(
        default=None, description="Probability that the serving policy shows this item."
    )
    because: list[BecausePublic] = Field(
        default_factory=list,
        description="The mood, where it chose the item; then up to three heard items that "
        "contributed most, computed from the model.",
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
    k: JsonInt = Field(default=DEFAULT_K, ge=1, le=MAX_BODY_K, description="How many items.")
    exclude: list[Id] = Field(
        default_factory=list, max_length=MAX_BODY_EXCLUDE, description="Item ids never to return."
    )
    mood: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_MOOD_LENGTH), StorableText]
        | None
    ) = Field(
        default=None,
        description="Blend with a mood of the vocabulary; 404 where the catalogue lacks it.",
        json_schema_extra={"enum": [*MOOD_NAMES, None]},
    )


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
    k: JsonInt = Field(
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
        default_factory=list, description="Every catalogue served (ready once any one is)."
    )


class ErrorDetailPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None


class ErrorPublic(BaseModel):
    error: ErrorDetailPublic


class ContinueIn(BaseModel):
    """A new playlist to continue: its name, its first tracks, or both (either may be empty)."""

    model_config = ConfigDict(extra="forbid")

    name: (
        Annotated[
            str,
            StringConstraints(max_length=MAX_PLAYLIST_NAME),
            AfterValidator(printable_text),
        ]
        | None
    ) = Field(default=None, description="The playlist's name, e.g. 'summer roadtrip'.")
    tracks: list[CleanId] = Field(
        default_factory=list,
        max_length=MAX_PLAYLIST_TRACKS,
        description="Track ids already on the playlist (up to 1,000); unknown ones are counted.",
    )
    k: JsonInt = Field(default=DEFAULT_K, ge=1, le=MAX_CONTINUE_K, description="How many tracks.")
    exclude: list[CleanId] = Field(
        default_factory=list, max_length=MAX_BODY_EXCLUDE, description="Track ids never to return."
    )


class ContinueReasonPublic(BaseModel):
    kind: str = Field(description="seed (a seed track) or title (the playlist's name).")
    item_id: str | None = Field(default=None, description="The seed track (kind seed).")
    name: str = Field(description="The seed track's name, or \"playlists named like '...'\".")
    contribution: float = Field(
        description="Seed: the model's attribution where it has one, else how many training "
        "playlists hold both tracks. Title: the title model's score for the track."
    )


class ContinueItemPublic(BaseModel):
    item_id: str
    name: str
    artist: str | None = None
    score: float
    because: list[ContinueReasonPublic] = Field(default_factory=list)


class ContinuePublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    items: list[ContinueItemPublic]
    strategy: str = Field(
        description="seeds, seeds_title, title, or popular (neither seeds nor name said anything)."
    )
    unknown_tracks: list[str] = Field(description="Seed track ids the catalogue does not hold.")
    model_version: str


class PlaylistTrackPublic(BaseModel):
    item_id: str
    name: str = Field(description="The track's name (its id where the catalogue lacks it).")
    artist: str | None = None


class PlaylistPublic(BaseModel):
    pid: str
    name: str
    num_followers: int
    tracks: list[PlaylistTrackPublic]


class TrackPublic(BaseModel):
    item_id: str
    name: str
    artist: str | None = None
    playlists: int = Field(description="Training playlists holding the track.")


class TrackSearchPublic(BaseModel):
    query: str
    items: list[TrackPublic]
