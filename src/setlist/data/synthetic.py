"""A seeded synthetic music world with the shape of Last.fm data and structure to learn.

Artists belong to genres (genre sizes uneven) and have Zipf-like popularity; each user has a
sparse taste mixture over genres (Dirichlet), and draws artists genre first, then by
popularity within the genre. Artists drawn more than once get more plays, and play counts are
heavy-tailed (lognormal per user activity). A model that learns the genre structure beats
global popularity; popularity alone is still a fair baseline because draws follow it.

Everything is numpy over whole chunks of users (no per-user Python), so the 360K-scale preset
(359K users, 292K artists, ~17.5M rows) takes seconds, and the same seed always gives the same
world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.data.schema import INTERACTION_SCHEMA, Dataset, conform
from setlist.errors import ConfigError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

GENRES = (
    "rock", "pop", "electronic", "hip-hop", "jazz", "metal", "indie", "folk", "classical",
    "punk", "soul", "reggae", "blues", "country", "ambient", "techno", "house", "r&b",
    "post-rock", "shoegaze", "grunge", "emo", "hardcore", "trip-hop", "dubstep", "drum and bass",
    "funk", "disco", "k-pop", "j-rock", "latin", "bossa nova", "afrobeat", "synthpop",
    "new wave", "black metal", "death metal", "singer-songwriter", "lo-fi", "soundtrack",
)  # fmt: skip
MOODS = ("chill", "energetic", "melancholic", "upbeat", "dark", "dreamy", "aggressive", "mellow")
_ADJECTIVES = (
    "Silver", "Broken", "Electric", "Velvet", "Hollow", "Crimson", "Quiet", "Wild", "Golden",
    "Neon", "Paper", "Iron", "Lunar", "Glass", "Midnight", "Scarlet", "Static", "Northern",
    "Wooden", "Violet", "Burning", "Frozen", "Distant", "Secret", "Restless", "Savage",
    "Gentle", "Cosmic", "Rusty", "Sleeping", "Flying", "Endless",
)  # fmt: skip
_NOUNS = (
    "Wolves", "Harbor", "Machines", "Lanterns", "Orchard", "Echoes", "Tigers", "Rivers",
    "Satellites", "Ghosts", "Parade", "Foxes", "Kingdom", "Arrows", "Tides", "Engines",
    "Sparrows", "Canyon", "Mirrors", "Giants", "Comets", "Gardens", "Pilots", "Saints",
    "Shadows", "Horses", "Bells", "Islands", "Prophets", "Waves", "Embers", "Anchors",
    "Owls", "Circuits", "Monks", "Dunes",
)  # fmt: skip
_YEAR_START = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_YEAR_US = 365 * 24 * 3600 * 1_000_000
_DRAWS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class Preset:
    """The size of a synthetic world."""

    n_users: int
    n_artists: int
    n_genres: int
    mean_items_per_user: float


PRESETS: dict[str, Preset] = {
    "tiny": Preset(300, 400, 6, 25.0),
    "small": Preset(2_000, 6_000, 12, 45.0),
    "medium": Preset(50_000, 60_000, 24, 50.0),
    # Last.fm-360K: 359,347 users, ~294K artists, 17,559,530 rows (~49 artists per user).
    "lastfm-360k": Preset(359_000, 292_000, 40, 53.8),
}


def generate_preset(name: str, seed: int = 0) -> Dataset:
    """The world of a named preset (``tiny``, ``small``, ``medium``, ``lastfm-360k``)."""
    try:
        preset = PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ConfigError(f"unknown synthetic preset {name!r}; known presets: {known}") from None
    dataset = generate_world(
        preset.n_users,
        preset.n_artists,
        n_genres=preset.n_genres,
        mean_items_per_user=preset.mean_items_per_user,
        seed=seed,
    )
    dataset.name = f"synthetic-{name}"
    return dataset


@dataclass
class _Artists:
    genre: IntArray  # primary genre per artist
    popularity: FloatArray  # Zipf weight per artist
    order: IntArray  # artists sorted by genre (contiguous blocks)
    cumulative: FloatArray  # cumulative popularity along ``order``
    block_start: FloatArray  # cumulative popularity before each genre's block
    block_total: FloatArray  # total popularity of each genre
    genre_share: FloatArray  # share of artists per genre (also the taste prior)


def generate_world(
    n_users: int,
    n_artists: int,
    *,
    n_genres: int = 20,
    mean_items_per_user: float = 40.0,
    seed: int = 0,
    with_timestamps: bool = True,
) -> Dataset:
    """A deterministic synthetic dataset: interactions, artist names, and genre/mood tags."""
    if n_users < 1 or n_artists < 1 or n_genres < 1 or mean_items_per_user < 1:
        raise ConfigError(
            "synthetic world needs n_users, n_artists, n_genres >= 1 and mean_items_per_user >= 1"
        )
    n_genres = min(n_genres, n_artists)
    rng = np.random.default_rng(seed)
    artists = _make_artists(rng, n_artists, n_genres)
    users, items, plays = _draw_interactions(rng, artists, n_users, mean_items_per_user)
    stamps = _timestamps(rng, users, n_users) if with_timestamps else None
    interactions = _frame(users, items, plays, stamps, n_users, n_artists)
    return Dataset(
        name=f"synthetic-{n_users}x{n_artists}-seed{seed}",
        interactions=interactions,
        items=_items_frame(n_artists),
        item_tags=_tags_frame(rng, artists, n_genres),
    )


def _make_artists(rng: np.random.Generator, n_artists: int, n_genres: int) -> _Artists:
    share = 1.0 / np.arange(1, n_genres + 1) ** 0.7
    share /= share.sum()
    genre = rng.choice(n_genres, size=n_artists, p=share).astype(np.int64)
    genre[:n_genres] = np.arange(n_genres)  # no genre left empty
    rank = rng.permutation(n_artists).astype(np.float64)
    popularity = (rank + 1.0) ** -0.9
    order = np.argsort(genre, kind="stable").astype(np.int64)
    cumulative = np.cumsum(popularity[order])
    block_total: FloatArray = np.bincount(genre, weights=popularity, minlength=n_genres).astype(
        np.float64
    )
    block_start = np.concatenate(([0.0], np.cumsum(block_total)[:-1]))
    counts: FloatArray = np.bincount(genre, minlength=n_genres).astype(np.float64)
    share_of_artists = np.asarray(counts / counts.sum(), dtype=np.float64)
    return _Artists(
        genre, popularity, order, cumulative, block_start, block_total, share_of_artists
    )


def _draw_interactions(
    rng: np.random.Generator, artists: _Artists, n_users: int, mean_items: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """(user, artist, plays) arrays, users in ascending order, one row per distinct pair."""
    sigma = 0.6
    raw_sizes = rng.lognormal(np.log(mean_items) - sigma**2 / 2, sigma, size=n_users)
    sizes: IntArray = np.clip(np.rint(raw_sizes), 1, 20 * mean_items).astype(np.int64)
    activity = rng.normal(3.5, 0.9, size=n_users)  # log of a user's typical play count
    per_chunk = max(1, int(_DRAWS_PER_CHUNK // mean_items))
    parts: list[tuple[IntArray, IntArray, FloatArray]] = []
    for start in range(0, n_users, per_chunk):
        stop = min(n_users, start + per_chunk)
        parts.append(_draw_chunk(rng, artists, start, sizes[start:stop], activity[start:stop]))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _draw_chunk(
    rng: np.random.Generator,
    artists: _Artists,
    first_user: int,
    sizes: IntArray,
    activity: FloatArray,
) -> tuple[IntArray, IntArray, FloatArray]:
    n, n_genres = len(sizes), len(artists.block_total)
    taste = rng.dirichlet(artists.genre_share * n_genres * 0.15 + 1e-3, size=n)
    cdf = np.cumsum(taste, axis=1)
    cdf[:, -1] = 1.0
    owner = np.repeat(np.arange(n, dtype=np.int64), sizes)
    # One searchsorted for every draw: row u's CDF is shifted by u, so u + r lands in row u.
    shifted = (cdf + np.arange(n)[:, None]).ravel()
    pick = owner + rng.random(owner.size)
    genre = np.searchsorted(shifted, pick, side="right") - owner * n_genres
    genre = np.minimum(genre, n_genres - 1)
    target = artists.block_start[genre] + rng.random(owner.size) * artists.block_total[genre]
    position = np.searchsorted(artists.cumulative, target, side="right")
    position = np.minimum(position, len(artists.order) - 1)
    artist = artists.order[position]
    n_artists = len(artists.genre)
    keys, repeats = np.unique(owner * n_artists + artist, return_counts=True)
    user, artist = keys // n_artists, keys % n_artists
    noise = rng.lognormal(activity[user], 1.0)
    plays = np.ceil(noise * repeats.astype(np.float64) ** 1.5)
    return user + first_user, artist, plays


def _timestamps(rng: np.random.Generator, users: IntArray, n_users: int) -> IntArray:
    """First-heard times over one year: each user joins at some point and listens onwards."""
    joined = rng.random(n_users) * 0.5
    fraction = joined[users] + rng.random(users.size) * (1.0 - joined[users])
    return _YEAR_START + (fraction * _YEAR_US).astype(np.int64)


def _labels(prefix: str, n: int) -> pl.Series:
    width = max(6, len(str(n - 1)))
    return pl.select(
        pl.concat_str(pl.lit(prefix), pl.int_range(n).cast(pl.String).str.zfill(width))
    ).to_series()


def _frame(
    users: IntArray,
    items: IntArray,
    plays: FloatArray,
    stamps: IntArray | None,
    n_users: int,
    n_artists: int,
) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "user": _labels("user_", n_users).gather(pl.Series(users)),
            "item": _labels("artist_", n_artists).gather(pl.Series(items)),
            "weight": plays,
        }
    )
    if stamps is not None:
        stamp = pl.Series("timestamp", stamps).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        frame = frame.with_columns(stamp)
    return conform(frame, INTERACTION_SCHEMA)


def _items_frame(n_artists: int) -> pl.DataFrame:
    """Names like "Velvet Harbor" (a number added once the word pairs run out)."""
    i = np.arange(n_artists)
    pairs = len(_ADJECTIVES) * len(_NOUNS)
    adjective = pl.Series(_ADJECTIVES).gather(pl.Series(i % len(_ADJECTIVES)))
    noun = pl.Series(_NOUNS).gather(pl.Series((i // len(_ADJECTIVES)) % len(_NOUNS)))
    round_ = pl.Series(i // pairs + 1)
    frame = pl.DataFrame({"adjective": adjective, "noun": noun, "round": round_})
    name = pl.concat_str("adjective", pl.lit(" "), "noun")
    name = (
        pl.when(pl.col("round") > 1)
        .then(pl.concat_str(name, pl.lit(" "), pl.col("round").cast(pl.String)))
        .otherwise(name)
    )
    return frame.select(
        item=_labels("artist_", n_artists),
        name=name,
        url=pl.lit(None, dtype=pl.String),
    )


def _genre_names(n_genres: int) -> list[str]:
    return [GENRES[g] if g < len(GENRES) else f"genre-{g}" for g in range(n_genres)]


def _tags_frame(rng: np.random.Generator, artists: _Artists, n_genres: int) -> pl.DataFrame:
    """Primary genre for every artist, a second genre for some, a mood for half of them."""
    n = len(artists.genre)
    scale = np.ceil(artists.popularity / artists.popularity.max() * 200.0).astype(np.int64) + 1
    second = (artists.genre + rng.integers(1, max(2, n_genres), size=n)) % max(1, n_genres)
    has_second = (rng.random(n) < 0.3) & (second != artists.genre)
    mood = rng.integers(0, len(MOODS), size=n)
    has_mood = rng.random(n) < 0.5
    genres = pl.Series(_genre_names(n_genres))
    ids = _labels("artist_", n)
    pieces = [
        (np.arange(n), genres.gather(pl.Series(artists.genre)), scale),
        (np.flatnonzero(has_second), genres.gather(pl.Series(second[has_second])), None),
        (np.flatnonzero(has_mood), pl.Series(MOODS).gather(pl.Series(mood[has_mood])), None),
    ]
    frames = []
    for rows, tags, counts in pieces:
        count = counts if counts is not None else np.maximum(1, scale[rows] // 3)
        frames.append(
            pl.DataFrame(
                {"item": ids.gather(pl.Series(rows)), "tag": tags, "count": count.astype(np.int64)}
            )
        )
    return pl.concat(frames).sort("item", "count", descending=[False, True])
