"""Data: sources (mirror, cache, download), loaders, validation, cleaning, splits, synthetic."""
