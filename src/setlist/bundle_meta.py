"""A bundle's metadata as one frozen, typed value, decoded from ``bundle.json`` in one place.

Before this, the service, the pipeline and the retrain loop each dug into a ``dict[str, Any]``
and decoded the weighting or the training time their own way, each forgiving a different
malformation. Now :meth:`BundleMeta.decode` is the only reader: a value of the wrong type is an
:class:`ArtifactError` naming the field and the value, and everything else reads typed fields.
The JSON keys are the ones bundles have always been written with, so old bundles still load;
keys this code does not know are kept in ``extra`` and written back as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, cast, get_args

from setlist.config import WeightConfig, Weighting
from setlist.errors import ArtifactError

_KNOWN = (
    "model_type",
    "params",
    "weighting",
    "metrics",
    "fit",
    "dataset",
    "data_fingerprint",
    "data",
    "split",
    "trained_at",
    "version",
    "index",
    "listeners",
    "catalogue",
)


@dataclass(frozen=True)
class BundleMeta:
    """What a bundle records about how its model was made (every field optional)."""

    model_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: The confidence weighting the model's input was given (None: not recorded).
    weighting: WeightConfig | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    fit: dict[str, float] = field(default_factory=dict)
    dataset: str | None = None
    data_fingerprint: str | None = None
    split: str | None = None
    trained_at: datetime | None = None
    version: str | None = None
    #: The vector index's description (kind, parameters, measured recall), for factor models.
    index: dict[str, Any] | None = None
    #: The listener index's description (dims, depth, recall against the exact pairing).
    listeners: dict[str, Any] | None = None
    #: The catalogue the model was trained for (artists, tracks, ...); None in older bundles.
    catalogue: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        """The JSON object written into ``bundle.json`` (unset fields left out)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None or value == {}:
                continue
            if isinstance(value, WeightConfig):
                value = {k.name: getattr(value, k.name) for k in fields(value)}
            elif isinstance(value, datetime):
                value = value.isoformat()
            out[f.name] = value
        return out

    @classmethod
    def decode(cls, raw: object) -> BundleMeta:
        """Read the ``meta`` object of ``bundle.json``; a malformed field is an ArtifactError."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ArtifactError(f"bundle meta must be an object, got {raw!r}")
        data = raw.get("data")
        fingerprint = raw.get("data_fingerprint")
        if fingerprint is None and isinstance(data, Mapping):
            fingerprint = data.get("fingerprint")  # older bundles nested it under "data"
        extra = {k: v for k, v in raw.items() if k not in _KNOWN}
        if data is not None:
            extra["data"] = data
        return cls(
            model_type=_text(raw, "model_type"),
            params=dict(_object(raw, "params") or {}),
            weighting=_weighting(raw.get("weighting")),
            metrics=_numbers(raw, "metrics"),
            fit=_numbers(raw, "fit"),
            dataset=_text(raw, "dataset"),
            data_fingerprint=None if fingerprint is None else str(fingerprint),
            split=_text(raw, "split"),
            trained_at=_datetime(raw.get("trained_at")),
            version=_text(raw, "version"),
            index=_object(raw, "index"),
            listeners=_object(raw, "listeners"),
            catalogue=_text(raw, "catalogue"),
            extra=extra,
        )


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)  # a version may have been written as a number
    raise ArtifactError(f"bundle meta {key} must be a string, got {value!r}")


def _object(raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ArtifactError(f"bundle meta {key} must be an object, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _numbers(raw: Mapping[str, Any], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (_object(raw, key) or {}).items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ArtifactError(f"bundle meta {key}.{name} must be a number, got {value!r}")
        out[name] = float(value)
    return out


def _datetime(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ArtifactError(f"bundle meta trained_at must be an ISO 8601 time, got {value!r}")


def _weighting(value: object) -> WeightConfig | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ArtifactError(f"bundle meta weighting must be an object, got {value!r}")
    schemes = get_args(Weighting)
    scheme = value.get("scheme", WeightConfig.scheme)
    if scheme not in schemes:
        raise ArtifactError(
            f"bundle meta weighting.scheme must be one of {', '.join(schemes)}, got {scheme!r}"
        )
    numbers: dict[str, float] = {}
    for f in fields(WeightConfig):
        if f.name == "scheme" or f.name not in value:
            continue
        number = value[f.name]
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise ArtifactError(f"bundle meta weighting.{f.name} must be a number, got {number!r}")
        numbers[f.name] = float(number)
    return WeightConfig(scheme=cast(Weighting, scheme), **numbers)
