"""Offline evaluation: pure ranking metrics and the full-catalogue protocol over a split."""

from setlist.evaluate.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from setlist.evaluate.protocol import MetricsReport, evaluate, relevant_items

__all__ = [
    "MetricsReport",
    "average_precision_at_k",
    "catalogue_coverage",
    "evaluate",
    "hit_matrix",
    "hit_rate_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "relevant_items",
]
