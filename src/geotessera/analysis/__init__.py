"""Analysis on embeddings that scales out on Dask (layer L7; the ``ml`` extra).

- :func:`extract`: embeddings at labelled points and polygon pixels -> GeoDataFrame;
- :func:`train`: a scikit-learn model with spatial block cross-validation -> (model, report);
- :func:`predict`: a model applied wall to wall -> GeoTIFF;
- :func:`similar`, :func:`change`, :func:`cluster`: similarity to exemplars, change between
  years, k-means clusters -> GeoTIFFs.

Every function takes ``source=``: a :class:`~geotessera.client.GeoTessera` client (tiles,
fetched on demand into its ``embeddings_dir``) or a :class:`~geotessera.store.GeoTesseraZarr`
store; the results are the same. Region-wide operations run block-wise on dask arrays,
locally or on a ``dask.distributed`` cluster (``client=``), and write GeoTIFFs block by block.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .changes import change
    from .clustering import cluster
    from .extraction import extract
    from .models import TrainedModel, load_model, save_model, train
    from .prediction import predict
    from .similarity import similar

_NAMES = {
    "extract": "extraction",
    "train": "models",
    "TrainedModel": "models",
    "load_model": "models",
    "save_model": "models",
    "predict": "prediction",
    "similar": "similarity",
    "change": "changes",
    "cluster": "clustering",
}

__all__ = [
    "TrainedModel",
    "change",
    "cluster",
    "extract",
    "load_model",
    "predict",
    "save_model",
    "similar",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'geotessera.analysis' has no attribute {name!r}")
