"""Models: one per module, all implementing :class:`setlist.models.base.Recommender`."""

from setlist.models.base import Recommender, load_model, model_class

__all__ = ["Recommender", "load_model", "model_class"]

# Importing the model modules registers their classes with ``model_class``.
from setlist.models import als as _als  # noqa: E402,F401
from setlist.models import blend as _blend  # noqa: E402,F401
from setlist.models import bpr as _bpr  # noqa: E402,F401
from setlist.models import ease as _ease  # noqa: E402,F401
from setlist.models import knn as _knn  # noqa: E402,F401
from setlist.models import popularity as _popularity  # noqa: E402,F401
from setlist.models import two_tower as _two_tower  # noqa: E402,F401
