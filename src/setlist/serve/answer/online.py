"""What listeners did since the served model was trained, as seen by the service.

The events layer (``setlist.events``) writes acknowledged listens and likes here; the service
reads a user's extra history when it answers, and folds it into that user's vector
(``Recommender.recommend_histories``), so a listen shows in the very next recommendations
without refitting. The in-memory store is the default; anything with the same two methods
(``add`` / ``extra``) can stand in for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol


class OnlineHistory(Protocol):
    """Per-user extra history: item id -> added raw weight (plays; negative for dislikes)."""

    def add(self, user_id: str, item_id: str, weight: float) -> None: ...

    def extra(self, user_id: str) -> dict[str, float]: ...


class InMemoryOnlineHistory:
    """A bounded, thread-safe LRU of users' recent extra history.

    Bounded so that a flood of new user ids cannot grow memory without limit: the least
    recently touched users are forgotten first (their events stay in the event store and
    reach the model at the next retraining).
    """

    def __init__(self, max_users: int = 100_000, max_items_per_user: int = 500) -> None:
        self.max_users = max_users
        self.max_items_per_user = max_items_per_user
        self._users: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str, weight: float) -> None:
        with self._lock:
            items = self._users.pop(user_id, {})
            items[item_id] = items.pop(item_id, 0.0) + weight
            while len(items) > self.max_items_per_user:
                items.pop(next(iter(items)))
            self._users[user_id] = items
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)

    def extra(self, user_id: str) -> dict[str, float]:
        with self._lock:
            return dict(self._users.get(user_id, {}))

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)
