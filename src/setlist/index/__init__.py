"""Vector indexes: exact (BLAS) and approximate (faiss HNSW, IVF) behind one interface.

Importing this package registers every backend with :func:`index_class` / :func:`load_index`.
"""

from setlist.index.ann import HNSWIndex, IVFIndex, set_search_threads
from setlist.index.base import VectorIndex, index_class, load_index
from setlist.index.build import build_index, choose_kind, recall_at_k, tuned_index
from setlist.index.exact import ExactIndex

__all__ = [
    "ExactIndex",
    "HNSWIndex",
    "IVFIndex",
    "VectorIndex",
    "build_index",
    "choose_kind",
    "index_class",
    "load_index",
    "recall_at_k",
    "set_search_threads",
    "tuned_index",
]
