"""Off-policy estimates of a candidate model's listen rate from logged impressions.

Setting. Each logged *request* showed a slate of items to one listener; every shown item was
logged as an ``impression`` with its *propensity* p(a | x): the probability that the logging
policy (``setlist.serve.answer.explore``) shows item a to that listener at all. Its *reward* r is 1
when the listener listened to (or liked, or playlisted) it within a window after the
impression, else 0. The candidate would show the slate S(x) of k_x items. Its value is the
expected listen rate per shown item, ``V = E_x[ (1/k_x) sum_{a in S(x)} E[r | x, a] ]``,
assuming a listen depends on the listener and the item, not on what else is on the slate.

Estimators (w = [a in S(x)] / p(a | x) for each logged impression):

- IPS: ``mean_x (1/k_x) sum_logged w r``; unbiased when every candidate item has p > 0.
- SNIPS: ``sum w r / sum w`` (self-normalised: E[sum w] = sum k_x); a little bias, much less
  variance when weights are large.
- Doubly robust: ``mean_x (1/k_x) [sum_{a in S(x)} q(a) + sum_logged w (r - q(a))]`` with a
  reward model q (here: each item's smoothed logged listen rate); unbiased like IPS whatever q
  is, with less variance the better q is.

Intervals: percentile bootstrap over requests (the unit that was sampled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.errors import ConfigError
from setlist.events.weights import EXPOSURE_TYPES, POSITIVE_TYPES

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LoggedImpressions:
    """Impressions, flattened: request index (0..n_requests-1), item code, propensity, reward."""

    request: IntArray
    item: IntArray
    propensity: FloatArray
    reward: FloatArray
    n_requests: int

    def __post_init__(self) -> None:
        n = len(self.request)
        if not (len(self.item) == len(self.propensity) == len(self.reward) == n):
            raise ConfigError("logged arrays must have the same length")
        if n and (self.propensity.min() <= 0 or self.propensity.max() > 1):
            raise ConfigError("propensities must be in (0, 1]", field="propensity")
        if n and (self.request.min() < 0 or self.request.max() >= self.n_requests):
            raise ConfigError("request indexes must be in 0..n_requests-1")


@dataclass(frozen=True)
class Estimate:
    name: str
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class PolicyEstimates:
    estimates: dict[str, Estimate]
    logged: Estimate  # the logging policy's own listen rate per shown item
    n_requests: int
    n_impressions: int
    matched: int  # logged impressions of items the candidate would also show
    max_weight: float


def item_reward_model(logged: LoggedImpressions, n_items: int, prior: float = 10.0) -> FloatArray:
    """Each item's listen rate over its impressions, shrunk towards the overall rate."""
    overall = float(logged.reward.mean()) if len(logged.reward) else 0.0
    shown = np.bincount(logged.item, minlength=n_items).astype(np.float64)
    heard = np.bincount(logged.item, weights=logged.reward, minlength=n_items)
    return np.asarray((heard + prior * overall) / (shown + prior), dtype=np.float64)


def estimate(
    logged: LoggedImpressions,
    candidate: IntArray,
    reward_model: FloatArray,
    *,
    bootstrap: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
) -> PolicyEstimates:
    """IPS, SNIPS and DR estimates of the candidate with (1 - alpha) bootstrap intervals.

    ``candidate`` is (n_requests, k): the candidate's item codes per request, -1 as padding;
    ``reward_model`` gives q for every item code.
    """
    if candidate.shape[0] != logged.n_requests:
        raise ConfigError(f"candidate has {candidate.shape[0]} rows for {logged.n_requests}")
    if not 0 < alpha < 1 or bootstrap < 1:
        raise ConfigError("need 0 < alpha < 1 and bootstrap >= 1")
    parts = _per_request(logged, candidate, reward_model)
    live = parts.k > 0
    ips, dr = parts.ips[live] / parts.k[live], parts.dr[live] / parts.k[live]
    num, den = parts.snips_num[live], parts.snips_den[live]
    shown = np.bincount(logged.request, minlength=logged.n_requests)[live].astype(np.float64)
    got = np.bincount(logged.request, weights=logged.reward, minlength=logged.n_requests)[live]

    def stats(idx: IntArray | slice) -> FloatArray:
        return np.array(
            [
                ips[idx].mean(),
                _ratio(num[idx].sum(), den[idx].sum()),
                dr[idx].mean(),
                _ratio(got[idx].sum(), shown[idx].sum()),
            ]
        )

    point = stats(slice(None))
    rng = np.random.default_rng(seed)
    n = int(live.sum())
    draws = np.array([stats(rng.integers(0, n, n)) for _ in range(bootstrap)]) if n else None
    names = ("ips", "snips", "dr", "logged")
    bounds = [
        _interval(draws[:, j] if draws is not None else None, point[j], alpha) for j in range(4)
    ]
    found = {name: Estimate(name, float(point[j]), *bounds[j]) for j, name in enumerate(names)}
    weights = parts.weights
    return PolicyEstimates(
        estimates={k: v for k, v in found.items() if k != "logged"},
        logged=found["logged"],
        n_requests=n,
        n_impressions=len(logged.request),
        matched=int((weights > 0).sum()),
        max_weight=float(weights.max()) if len(weights) else 0.0,
    )


@dataclass(frozen=True)
class _Parts:
    k: FloatArray
    ips: FloatArray
    dr: FloatArray
    snips_num: FloatArray
    snips_den: FloatArray
    weights: FloatArray


def _per_request(
    logged: LoggedImpressions, candidate: IntArray, reward_model: FloatArray
) -> _Parts:
    n_req, n_items = logged.n_requests, len(reward_model)
    valid = candidate >= 0
    k = valid.sum(axis=1).astype(np.float64)
    rows = np.repeat(np.arange(n_req, dtype=np.int64), candidate.shape[1])[valid.ravel()]
    cand_keys = rows * n_items + candidate[valid]
    in_candidate = np.isin(logged.request * n_items + logged.item, cand_keys)
    w = in_candidate / logged.propensity
    q_logged = reward_model[logged.item]
    direct = np.where(valid, reward_model[np.where(valid, candidate, 0)], 0.0).sum(axis=1)

    def by_request(values: FloatArray) -> FloatArray:
        return np.bincount(logged.request, weights=values, minlength=n_req).astype(np.float64)

    return _Parts(
        k=k,
        ips=by_request(w * logged.reward),
        dr=direct + by_request(w * (logged.reward - q_logged)),
        snips_num=by_request(w * logged.reward),
        snips_den=by_request(w),
        weights=np.asarray(w, dtype=np.float64),
    )


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _interval(draws: FloatArray | None, point: float, alpha: float) -> tuple[float, float]:
    if draws is None:
        return (float("nan"), float("nan"))
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return (point, point)
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class EventLog:
    """Impressions from the event store, coded for :func:`estimate`."""

    logged: LoggedImpressions
    request_users: list[str]  # the listener of each request
    item_ids: list[str]  # item code -> external id
    without_propensity: int  # impressions that could not be used
    heard: list[set[str]]  # per request: items with feedback before it (the service excluded them)


def from_event_frame(frame: pl.DataFrame, window_s: float = 3600.0) -> EventLog:
    """Impressions and their rewards from stored events (``EventStore.frame()``).

    A request is the impressions of one user with the same ``ts`` (one slate); an impression's
    reward is 1 when a listen, like or playlist_add of that user and item follows within
    ``window_s`` seconds.
    """
    impressions = frame.filter(pl.col("type") == "impression")
    usable = impressions.filter(pl.col("propensity").is_not_null())
    outcomes = frame.filter(pl.col("type").is_in(list(POSITIVE_TYPES))).select(
        "user_id", "item_id", out_us=pl.col("ts_us")
    )
    window_us = int(window_s * 1_000_000)
    rows = usable.select("user_id", "item_id", "ts_us", "propensity").with_row_index("row")
    hit = (
        rows.join(outcomes, on=["user_id", "item_id"], how="inner")
        .filter(pl.col("out_us").is_between(pl.col("ts_us"), pl.col("ts_us") + window_us))
        .select("row")
        .unique()
        .with_columns(reward=pl.lit(1.0))
    )
    coded = (
        rows.join(hit, on="row", how="left", maintain_order="left")
        .with_columns(
            pl.col("reward").fill_null(0.0),
            request=pl.struct("user_id", "ts_us").rank("dense").cast(pl.Int64) - 1,
            item=pl.col("item_id").rank("dense").cast(pl.Int64) - 1,
        )
        .sort("row")
    )
    n_requests = requests_count(coded)
    requests = coded.group_by("request").agg(pl.col("user_id", "ts_us").first()).sort("request")
    items = coded.group_by("item").agg(pl.col("item_id").first()).sort("item")
    logged = LoggedImpressions(
        request=coded.get_column("request").to_numpy().astype(np.int64),
        item=coded.get_column("item").to_numpy().astype(np.int64),
        propensity=coded.get_column("propensity").to_numpy().astype(np.float64),
        reward=coded.get_column("reward").to_numpy().astype(np.float64),
        n_requests=n_requests,
    )
    return EventLog(
        logged=logged,
        request_users=requests.get_column("user_id").to_list(),
        item_ids=items.get_column("item_id").to_list(),
        without_propensity=impressions.height - usable.height,
        heard=_heard_before(frame, requests),
    )


def requests_count(coded: pl.DataFrame) -> int:
    top = coded.get_column("request").max()
    return int(top) + 1 if isinstance(top, int) else 0


def _heard_before(frame: pl.DataFrame, requests: pl.DataFrame) -> list[set[str]]:
    """Per request, the items its user gave feedback on earlier: the online service excludes
    them, so a fair candidate must too (else its picks lack support in the log)."""
    feedback = frame.filter(~pl.col("type").is_in(list(EXPOSURE_TYPES))).select(
        "user_id", "item_id", fb_us=pl.col("ts_us")
    )
    found = (
        requests.join(feedback, on="user_id", how="inner")
        .filter(pl.col("fb_us") < pl.col("ts_us"))
        .group_by("request")
        .agg(pl.col("item_id").unique())
    )
    heard: list[set[str]] = [set() for _ in range(requests.height)]
    for request, items in found.iter_rows():
        heard[request] = set(items)
    return heard


def candidate_slates(
    ranked: dict[str, list[str]], log: EventLog, k: int
) -> tuple[dict[str, int], IntArray]:
    """Each request's top-k from its user's ranked list, minus what was heard before it.

    ``ranked`` holds, per user, the candidate's items best first (longer than k, so that k
    remain after the exclusions). Returns the item codes (the log's, extended with items the
    log never showed) and the (n_requests, k) slates, -1 padded.
    """
    codes = {item: i for i, item in enumerate(log.item_ids)}
    slates = np.full((log.logged.n_requests, k), -1, dtype=np.int64)
    for r, (user, heard) in enumerate(zip(log.request_users, log.heard, strict=True)):
        picks = [item for item in ranked.get(user, []) if item not in heard][:k]
        slates[r, : len(picks)] = [codes.setdefault(item, len(codes)) for item in picks]
    return codes, slates
