"""Seeing the data (layer L7): PCA and RGB mosaics, coverage maps, tile-set summaries.

The published names are kept::

    from geotessera.visualization import create_rgb_mosaic, create_pca_mosaic, visualize_global_coverage

Mosaics need only the core install; coverage maps need the ``viz`` extra (matplotlib).
"""

from .composites import create_pca_mosaic, create_rgb_mosaic
from .coverage import (
    datasets_in_manifest,
    source_coverage,
    visualize_global_coverage,
    visualize_sources_coverage,
    year_coverage,
)
from .coverage_draw import CoverageImage, render_png
from .extent import analyze_geotiff_coverage, calculate_bbox_from_file, calculate_bbox_from_points

__all__ = [
    "CoverageImage",
    "analyze_geotiff_coverage",
    "calculate_bbox_from_file",
    "calculate_bbox_from_points",
    "create_pca_mosaic",
    "create_rgb_mosaic",
    "datasets_in_manifest",
    "render_png",
    "source_coverage",
    "visualize_global_coverage",
    "visualize_sources_coverage",
    "year_coverage",
]
