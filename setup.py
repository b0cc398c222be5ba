"""Build hook: the run-time assets under src/geotessera/_data/ are made from assets/ before packaging,
and the optional C extension ``geotessera.export._lzw`` is compiled.

Everything else is in pyproject.toml. Every wheel, sdist or editable build first runs
``assets/build.py`` (npm registry packages -> country shapes and ISO codes), before setuptools
lists the package data. It does nothing when the assets are already current (as in an sdist,
which carries them) and otherwise builds them, or stops with a message when npm is missing,
so no build can silently lack them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


def _ensure_assets() -> None:
    spec = importlib.util.spec_from_file_location("geotessera_assets_build", ROOT / "assets" / "build.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: {ROOT / 'assets' / 'build.py'} is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    try:
        module.ensure(ROOT)
    except module.AssetError as exc:
        raise SystemExit(f"error: {exc}") from None


_ensure_assets()
# The GeoTIFF export's LZW encoder (libtiff's bit stream, faster). Optional: without a C compiler
# the package still installs and GDAL encodes LZW instead (slower, the same bytes).
setup(ext_modules=[Extension("geotessera.export._lzw", ["src/geotessera/export/_lzw.c"], optional=True)])
