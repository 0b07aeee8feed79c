"""The serving sections of :class:`setlist.config.Settings`, parsed into typed values once."""

from __future__ import annotations

from setlist.config import Settings
from setlist.errors import ConfigError
from setlist.serve.answer.ranking import RankingConfig


def _names(text: str) -> frozenset[str]:
    return frozenset(p.strip() for p in text.split(",") if p.strip())


def ranking_config(settings: Settings) -> RankingConfig:
    return RankingConfig(
        max_per_group=settings.rank_max_per_group,
        new_item_slot=settings.rank_new_item_slot,
        new_item_max_listeners=settings.rank_new_item_max_listeners,
        blocked_items=_names(settings.rank_blocked_items),
        blocked_tags=frozenset(t.casefold() for t in _names(settings.rank_blocked_tags)),
    )


def fallback_chain(settings: Settings) -> tuple[str, ...]:
    """The degradation chain, e.g. ``personalized,popular`` (503 once it is exhausted)."""
    from setlist.serve.answer.state import SOURCES

    chain = tuple(p.strip() for p in settings.fallback_chain.split(",") if p.strip())
    unknown = [p for p in chain if p not in SOURCES]
    if unknown or len(set(chain)) != len(chain):
        raise ConfigError(
            f"fallback_chain {settings.fallback_chain!r}: use distinct names from {SOURCES}",
            field="fallback_chain",
        )
    return chain
