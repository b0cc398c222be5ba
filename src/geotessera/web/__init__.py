"""Maps in the browser (layer L7): XYZ web tiles, Leaflet pages, coverage pages, a local server.

The published names are kept::

    from geotessera.web import geotiff_to_web_tiles, create_coverage_summary_map

Everything works offline: Leaflet (npm package ``leaflet``) is copied beside each page.
Web tiles need the ``viz`` extra (rio-tiler, morecantile).
"""

from .coverage_page import create_coverage_summary_map, write_coverage_page
from .mosaic import prepare_mosaic_for_web
from .page import create_simple_web_viewer
from .server import StaticServer
from .store_preview import StorePreview, is_store_location, store_preview_mosaic, store_zooms
from .tiles import TileReport, check_rgb_mosaic, check_zooms, geotiff_to_web_tiles, render_web_tiles

__all__ = [
    "StaticServer",
    "StorePreview",
    "TileReport",
    "check_rgb_mosaic",
    "check_zooms",
    "create_coverage_summary_map",
    "create_simple_web_viewer",
    "geotiff_to_web_tiles",
    "is_store_location",
    "prepare_mosaic_for_web",
    "render_web_tiles",
    "store_preview_mosaic",
    "store_zooms",
    "write_coverage_page",
]
