"""The model registry: MLflow runs, registered versions, aliases and the promotion gate."""

from setlist.registry.gate import PromotionDecision
from setlist.registry.store import (
    CHAMPION,
    ModelVersion,
    Registry,
    RegistryConfig,
    manifest_sha256,
)

__all__ = [
    "CHAMPION",
    "ModelVersion",
    "PromotionDecision",
    "Registry",
    "RegistryConfig",
    "manifest_sha256",
]
