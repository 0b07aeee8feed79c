"""One recommendation request, validated, and the limits every way in checks it against.

The limits live here, once, because several faces read them: the FastAPI declarations
(:mod:`setlist.serve.api.deps`, :mod:`setlist.serve.api.schemas`) and the hot route's own parser
(:mod:`setlist.serve.api.hotpath`) must accept exactly the same requests, and a limit written in
three files drifts. Limits that an operator sets (``max_k``, ``max_exclude``, ``max_batch``) are
settings, checked by the routes; these are the fixed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from setlist.serve.answer.explore import ExplorationPolicy

DEFAULT_K = 10  # items per answer when the caller does not say
MAX_ID_LENGTH = 256  # a user or item id (path, query or body)
MAX_MOOD_LENGTH = 64  # a mood name
MAX_BODY_K = 1000  # k in a JSON body (the max_k setting still applies)
MAX_SEEDS = 50  # seed artists of one onboarding request
MAX_BODY_EXCLUDE = 1000  # exclusions in one JSON body (the max_exclude setting still applies)
MAX_BATCH_USERS = 1000  # users of one batch request (the max_batch setting still applies)
MAX_PLAYLIST_TRACKS = 1000  # seed tracks of one playlist continuation
MAX_CONTINUE_K = 500  # tracks one continuation may ask for (the challenge's 500)
MAX_PLAYLIST_NAME = 200  # characters of a playlist name


@dataclass(frozen=True)
class Ask:
    """Who wants how many items, without which, in what mood, under which serving policy.

    Who: a ``user_id`` (known, or with online history, or unknown), else ``seeds`` (a new
    listener's seed artists, ids or names), else nobody (the degradation chain's fallback).
    ``policy`` None shows the top k with propensity 1; a policy draws the slate from its pool.

    ``continuation`` asks instead for the tracks that continue a new playlist: its
    ``playlist_tracks`` (track ids, in playlist order; unknown ones are counted, not fatal) and
    its ``playlist_name`` (either may be empty), scored by the bundle's
    :class:`~setlist.models.continuation.Continuer`.
    """

    user_id: str | None = None
    seeds: tuple[str, ...] = ()
    k: int = DEFAULT_K
    exclude: tuple[str, ...] = ()
    mood: str | None = None
    policy: ExplorationPolicy | None = None
    continuation: bool = False
    playlist_name: str | None = None
    playlist_tracks: tuple[str, ...] = ()

    def pool(self) -> int:
        """How many ranked items the policy chooses the k shown from."""
        return self.k if self.policy is None else self.policy.pool_size(self.k)
