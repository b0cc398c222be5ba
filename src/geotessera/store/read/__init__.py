"""Reading geoemb Zarr stores: :class:`GeoTesseraZarr` (needs the ``zarr`` extra).

- :mod:`.reader`: the public reader (settings, metadata, zones; points, regions, xarray);
- :mod:`.points`, :mod:`.regions`, :mod:`.windows`: scattered pixels, output grids and strips,
  window copies with the dequantisation;
- :mod:`.chunk_reader`, :mod:`.requests`: which byte ranges a read needs and the threads that
  fetch and decode them (one threading contract); :mod:`.decode`, :mod:`.chunk_groups`: the
  direct decoders; :mod:`.cache`: shard indexes in memory, chunks on disk;
- :mod:`.zones`: a readable zone and pixel statuses; :mod:`.zarr_adapter`,
  :mod:`.zone_dataset`: zarr-python and xarray over the same source.
"""

from __future__ import annotations

from .reader import DEFAULT_STORE_URL, GeoTesseraZarr, default_store_url, store_url
from .regions import Strip

__all__ = ["DEFAULT_STORE_URL", "GeoTesseraZarr", "Strip", "default_store_url", "store_url"]
