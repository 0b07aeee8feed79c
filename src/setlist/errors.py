"""The one exception hierarchy of setlist.

Domain code raises these, with the offending file, line, field or value in the message;
only ``setlist.serve`` turns them into HTTP responses, through :data:`HTTP_STATUS`.

    SetlistError                 code "error"
    ├── ConfigError              "config"        a setting or parameter out of range
    ├── DataError                "data"          input data that cannot be used
    │   ├── ChecksumError        "checksum"      a file whose SHA-256 is not the known one
    │   ├── DownloadError        "download"      a source that could not be fetched
    │   └── ValidationError      "validation"    rows/columns that break the schema
    │       ├── MalformedError   "malformed"     a request body that is not JSON at all
    │       └── TooLargeError    "too_large"     a request body or batch over its limit
    ├── ModelError               "model"         fitting, saving, loading a model
    │   └── ArtifactError        "artifact"      a model file that is broken or tampered with
    ├── RegistryError            "registry"      the model registry (MLflow)
    ├── NotFoundError            "not_found"     an unknown user, item, version
    └── UnavailableError         "unavailable"   nothing can serve the request right now
"""

from __future__ import annotations

from typing import Any


class SetlistError(Exception):
    """Base of every error setlist raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ConfigError(SetlistError):
    code = "config"


class DataError(SetlistError):
    code = "data"


class ChecksumError(DataError):
    code = "checksum"


class DownloadError(DataError):
    code = "download"


class ValidationError(DataError):
    code = "validation"


class MalformedError(ValidationError):
    code = "malformed"


class TooLargeError(ValidationError):
    code = "too_large"


class ModelError(SetlistError):
    code = "model"


class ArtifactError(ModelError):
    code = "artifact"


class RegistryError(SetlistError):
    code = "registry"


class NotFoundError(SetlistError):
    code = "not_found"


class UnavailableError(SetlistError):
    code = "unavailable"


HTTP_STATUS: dict[type[SetlistError], int] = {
    ConfigError: 422,
    ValidationError: 422,
    MalformedError: 400,
    TooLargeError: 413,
    NotFoundError: 404,
    UnavailableError: 503,
}


def http_status(error: SetlistError) -> int:
    """The HTTP status for an error: the nearest class in :data:`HTTP_STATUS`, else 500."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
