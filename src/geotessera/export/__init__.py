"""Writers for exported tiles: GeoTIFF and the local NPY layout's sidecar."""

from .geotiff import COMPRESSIONS, normalize_bands, normalize_compress, write_embedding_geotiff
from .metadata import check_output_dataset, read_sidecar, write_sidecar

__all__ = [
    "COMPRESSIONS",
    "check_output_dataset",
    "normalize_bands",
    "normalize_compress",
    "read_sidecar",
    "write_embedding_geotiff",
    "write_sidecar",
]
