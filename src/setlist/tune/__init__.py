"""Model specifications from the command line, search spaces, and the tuning loop.

- :mod:`setlist.models.specs`: ``kind.param=value`` overrides and budgets, checked before any work;
- :mod:`setlist.tune.space`: one search space per model, shared by both backends;
- :mod:`setlist.tune.study`: the study (Optuna in-process, or Ray Tune), nested MLflow runs,
  blends of the best models, and the final refit that goes through the promotion gate.
"""
