"""A/B arms: each listener is assigned to one arm (a registry alias or version) by a stable hash.

``SETLIST_AB_ARMS`` lists the arms as ``name=ref:weight`` separated by commas, for example
``control=champion:90,candidate=challenger:10`` (``ref`` a registry alias or version number; the
name defaults to the ref and the weight to 1). A user's bucket is the BLAKE2b hash of the salt
and the user id, a number in [0, 1): the same user gets the same arm across restarts and
machines. An arm whose model is not ready gets no traffic: its users go to the ready arms by the
same bucket over their renormalised weights, and come back when it is ready.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from setlist.errors import ConfigError
from setlist.serve.answer.state import ModelState

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_ARM = "champion"


@dataclass(frozen=True)
class ArmSpec:
    name: str
    ref: str
    weight: float


@dataclass
class Arm:
    """One arm and the state it serves, replaced whole (atomically) by a hot-swap."""

    spec: ArmSpec
    state: ModelState = field(default_factory=lambda: ModelState(problem="not loaded yet"))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ready(self) -> bool:
        return self.state.ready


def parse_arms(text: str) -> list[ArmSpec]:
    """Arms from ``name=ref:weight,...``; empty text is one arm on the ``champion`` alias."""
    specs: list[ArmSpec] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, _, rest = part.rpartition("=")
        ref, _, weight_text = rest.partition(":")
        name = name.strip() or ref.strip()
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            weight = -1.0
        if not _NAME.match(name) or not _NAME.match(ref.strip()) or not weight > 0:
            raise ConfigError(
                f"bad A/B arm {part!r}: use name=ref:weight (ref an alias or version, weight > 0)",
                field="ab_arms",
            )
        specs.append(ArmSpec(name, ref.strip(), weight))
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError(f"A/B arm names must be unique: {text!r}", field="ab_arms")
    return specs or [ArmSpec(DEFAULT_ARM, DEFAULT_ARM, 1.0)]


def bucket(user_id: str, salt: str) -> float:
    """A stable number in [0, 1) for a user (BLAKE2b, not Python's per-process ``hash``)."""
    digest = hashlib.blake2b(f"{salt}\0{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Arms:
    """The arms of the service; the first is the primary (models, similar items, readiness)."""

    def __init__(self, arms: list[Arm], salt: str = "setlist") -> None:
        if not arms:
            raise ConfigError("at least one arm is needed", field="ab_arms")
        self.arms = arms
        self.salt = salt

    @property
    def primary(self) -> Arm:
        return self.arms[0]

    def ready_arm(self) -> Arm:
        """The primary arm if ready, else the first ready one (else the primary)."""
        if self.primary.ready:
            return self.primary
        return next((a for a in self.arms if a.ready), self.primary)

    def assign(self, user_id: str) -> Arm:
        """The user's arm: by bucket over all arms, or over the ready ones if it is not ready."""
        if len(self.arms) == 1:
            return self.arms[0]
        u = bucket(user_id, self.salt)
        chosen = _pick(self.arms, u)
        if chosen.ready:
            return chosen
        ready = [a for a in self.arms if a.ready]
        return _pick(ready, u) if ready else chosen

    def by_name(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)


def _pick(arms: list[Arm], u: float) -> Arm:
    total = sum(a.spec.weight for a in arms)
    edge = 0.0
    for arm in arms:
        edge += arm.spec.weight / total
        if u < edge:
            return arm
    return arms[-1]
