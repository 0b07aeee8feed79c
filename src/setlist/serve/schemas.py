"""Response models of the HTTP API (role suffix ``Public``: what clients see)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ItemScorePublic(BaseModel):
    item_id: str
    name: str
    score: float


class RecommendationsPublic(BaseModel):
    user_id: str
    model_version: str
    strategy: str = Field(description="personalized, or popular_fallback for an unknown user")
    items: list[ItemScorePublic]


class SimilarItemsPublic(BaseModel):
    item_id: str
    model_version: str
    items: list[ItemScorePublic]


class ModelPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    version: str
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, float | None]
    data_fingerprint: str | None
    trained_at: datetime | None


class HealthPublic(BaseModel):
    status: str


class ReadyPublic(BaseModel):
    status: str
    model_version: str


class ErrorDetailPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None


class ErrorPublic(BaseModel):
    error: ErrorDetailPublic
