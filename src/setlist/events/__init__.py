"""Feedback events: schema, durable store, bus, online updater and training data.

Flow: ``POST /v1/events`` -> :func:`setlist.events.schema.parse_body` -> the store commits
(durable, idempotent by ``event_id``) -> the bus carries the new events -> the online updater
folds them into the service's per-user history. ``setlist train --with-events`` turns stored
events into training rows (:mod:`setlist.events.training`).
"""

from setlist.events.schema import EVENT_TYPES, Event, StoredEvent

__all__ = ["EVENT_TYPES", "Event", "StoredEvent"]
