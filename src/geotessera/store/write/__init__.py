"""Building geoemb Zarr stores from Tessera tiles: :func:`build_zarr` (needs the ``zarr`` extra).

- :mod:`.sources`: where the tiles come from (registry rows; remote files fetched by the
  transfer engine into a kept download directory);
- :mod:`.tiles`: each tile's grid on its zone and the pixels it owns;
- :mod:`.builder`: zone grids, the shard plan, resumable parallel writing;
- :mod:`.shards` and :mod:`.encoder`: one shard of a zone, assembled in bands and streamed.
"""

from __future__ import annotations

from .builder import BuildReport, build_zarr
from .sources import default_download_dir

__all__ = ["BuildReport", "build_zarr", "default_download_dir"]
