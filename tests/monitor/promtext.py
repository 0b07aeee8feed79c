"""Reading Prometheus text exposition in tests (shared helper, not a test module)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by (sample name, labels)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name, frozenset(s.labels.items())] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The one sample named ``name`` with exactly ``labels``; KeyError naming it when absent."""
    key = (name, frozenset(labels.items()))
    found = samples(text)
    if key not in found:
        near = sorted(str(dict(lab)) for n, lab in found if n == name)
        raise KeyError(f"no sample {name}{labels}; that name has: {near}")
    return found[key]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples(text).items() if n == name and want <= lab)
