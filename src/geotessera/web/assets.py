"""Leaflet, from the npm registry package ``leaflet`` (pinned in ``assets/package-lock.json``).

``make assets`` copies ``leaflet.js``, ``leaflet.css``, its images and licence into
``geotessera/_data/leaflet/``; wheels carry them. Every page we write gets its own copy
beside it (``leaflet/``), so a web map works with no internet and no CDN.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from ..errors import MissingExtraError

LEAFLET_DIR = "leaflet"


def leaflet_source() -> Path:
    """The packaged Leaflet directory (raises :class:`MissingExtraError` when it was not built)."""
    path = Path(str(resources.files("geotessera"))) / "_data" / LEAFLET_DIR
    if not (path / "leaflet.js").is_file():
        raise MissingExtraError(
            f"Leaflet not found at {path}; it comes from the npm package leaflet: run `make assets` in a "
            "source checkout, or reinstall geotessera from a wheel"
        )
    return path


def copy_leaflet(dest_dir: str | Path) -> Path:
    """Copy Leaflet (js, css, images, licence) into ``dest_dir/leaflet``; returns that directory."""
    src = leaflet_source()
    dest = Path(dest_dir) / LEAFLET_DIR
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def template(name: str) -> str:
    """The text of a packaged HTML template."""
    return (resources.files("geotessera.web") / "templates" / name).read_text(encoding="utf-8")
