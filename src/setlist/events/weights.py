"""How much each kind of feedback counts, in plays (the unit of the datasets' weights).

One table serves both consumers of events, so that what the service shows at once and what the
next model learns agree:

=============  ===========================================================================
listen         +1 play (a listen shorter than ``short_listen_ms`` counts as a skip instead)
like           +5 plays
playlist_add   +3 plays
skip           -0.5 play: a skipped item the user has no other plays of drops out
dislike        the (user, item) pair is removed: never recommended again, never a positive
impression     0 (exposure, not preference: used by the counterfactual estimators)
playlist_*     0 (feedback on, or the showing of, a whole playlist: for the playlist ranker)
=============  ===========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from setlist.events.schema import Event


@dataclass(frozen=True)
class FeedbackWeights:
    listen: float = 1.0
    like: float = 5.0
    playlist_add: float = 3.0
    skip: float = -0.5
    dislike: float = -math.inf
    short_listen_ms: int = 30_000

    def of(self, event_type: str, play_ms: int | None = None) -> float:
        """The weight one event adds to its (user, item) pair."""
        if event_type == "listen":
            short = play_ms is not None and play_ms < self.short_listen_ms
            return self.skip if short else self.listen
        return {
            "like": self.like,
            "playlist_add": self.playlist_add,
            "skip": self.skip,
            "dislike": self.dislike,
        }.get(event_type, 0.0)

    def event(self, event: Event) -> float:
        return self.of(event.type, event.play_ms)


POSITIVE_TYPES = ("listen", "like", "playlist_add")
#: What was shown, not what the listener did: an artist's or a playlist's impression.
EXPOSURE_TYPES = ("impression", "playlist_impression")
