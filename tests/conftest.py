"""Shared fixtures: a tiny sample store, a loopback S3 endpoint serving it, a Click runner.

Every fixture that starts a server binds 127.0.0.1 on port 0 and stops it in ``finally``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from geotessera.sample.serve import SampleServer


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic sample store at 100 m pixels (default region, years and versions)."""
    from geotessera.sample.build import build_store

    root = tmp_path_factory.mktemp("tiny_store")
    build_store(root, pixel_size_m=100.0)
    return root


@pytest.fixture(scope="session")
def s3_endpoint(tiny_store: Path) -> Iterator[SampleServer]:
    """A moto S3 endpoint on 127.0.0.1 (ephemeral port) serving ``tiny_store`` as the public bucket."""
    server = SampleServer(tiny_store, port=0)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def cli_runner() -> CliRunner:
    """A Click test runner."""
    return CliRunner()
