"""The HTML report: one self-contained file with real PNG images."""

from __future__ import annotations

import base64
import re

import numpy as np
import scipy.sparse as sp

from setlist.evaluate.protocol import evaluate
from setlist.evaluate.report import build_entry, render_html
from setlist.models.ease import EASERecommender
from setlist.models.popularity import PopularityRecommender


def test_report_is_self_contained_with_readable_images() -> None:
    rng = np.random.default_rng(0)
    train = sp.csr_matrix(((rng.random((60, 30)) < 0.3) * 1.0).astype(np.float32))
    test = sp.csr_matrix(((rng.random((60, 30)) < 0.1) * 1.0).astype(np.float32))
    tags = sp.csr_matrix(rng.integers(0, 2, (30, 5)).astype(np.float64))
    entries = []
    for name, model in (("popularity", PopularityRecommender()), ("ease", EASERecommender(l2=5))):
        model.fit(train)
        report = evaluate(model, train, test)
        ranked, _ = model.recommend(report.user_rows, train[report.user_rows], k=10)
        entry = build_entry(
            name, model.kind, model.get_params(), report, ranked, train,
            fit_seconds=0.01, peak_rss_mb=100.0, item_tags=tags,
        )  # fmt: skip
        assert entry.intervals["ndcg@10"].low <= report.metrics["ndcg@10"]
        assert entry.diversity is not None and 0 <= entry.diversity <= 1
        entries.append(entry)
    text = render_html(entries, {"dataset": "tiny <test>", "users": 60})
    assert text.startswith("<!DOCTYPE html>") and "tiny &lt;test&gt;" in text
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 3
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "http://" not in text and "https://" not in text  # nothing fetched from outside
    for heading in ("Quality vs training time", "Popularity bias", "listener activity"):
        assert heading in text
