"""setlist: from raw listening logs to a monitored, self-improving music recommender."""

__version__ = "0.1.0"
