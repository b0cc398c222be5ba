"""Fixtures of the end-to-end tests: a reference GeoTIFF export made once, without faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from geotessera.sample.serve import SampleServer
from support.outputs import download_args, run_cli


@pytest.fixture(scope="session")
def tiff_reference(s3_endpoint: SampleServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GeoTIFFs of the sample store's twelve v1 tiles (2024), exported by a plain run."""
    root = tmp_path_factory.mktemp("tiff_reference")
    proc = run_cli(download_args(root / "out", s3_endpoint.base_url, root / "cache", "tiff"))
    assert proc.returncode == 0, proc.stderr
    return root / "out"
