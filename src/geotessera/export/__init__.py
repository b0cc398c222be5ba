"""Writers for exported tiles: GeoTIFF and the local NPY layout's sidecar."""

from ._outputs import check_output_dir, make_output_dir
from ._verify import check_written_geotiff
from .geotiff import COMPRESSIONS, Compression, normalize_bands, normalize_compress, write_embedding_geotiff
from .metadata import (
    check_output_dataset,
    default_tiles_dir,
    discard_empty_claim,
    read_sidecar,
    write_sidecar,
)

__all__ = [
    "COMPRESSIONS",
    "Compression",
    "check_output_dataset",
    "check_output_dir",
    "check_written_geotiff",
    "default_tiles_dir",
    "discard_empty_claim",
    "make_output_dir",
    "normalize_bands",
    "normalize_compress",
    "read_sidecar",
    "write_embedding_geotiff",
    "write_sidecar",
]
