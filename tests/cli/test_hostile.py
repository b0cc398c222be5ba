"""Hostile command lines: each gives one ``error:`` line and its exit code, no traceback, bounded memory.

Exit 2 when the request cannot be served as asked (bad usage, bad values, nothing covered),
1 when the input is valid but the world fails (an unreachable endpoint, a corrupt file, a
directory that cannot be written). The corpus runs in process (a fresh Click runner each),
with tracemalloc bounding the memory a case may take; a few run as real processes under an
address-space limit, where a traceback or a memory blow-up would show as such.
"""

from __future__ import annotations

import importlib
import os
import resource
import shlex
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from geotessera.cli import cli

PEAK_BYTES = 300 * 2**20
"""No bad command line may allocate more than this (Python and numpy allocations, tracemalloc)."""
ENV = {"GEOTESSERA_RETRIES": "0", "GEOTESSERA_BASE_URL": None, "GEOTESSERA_WORKERS": None}

# (command line, exit code, a word the error line must contain); {M} is a local mirror of the
# sample store, {W} a directory of hostile files, {DEAD} a loopback URL nobody listens on,
# {LONG} a name of 300 bytes, {TILE} a directory holding one tile.
CASES: list[tuple[str, int, str]] = [
    # download: bounding boxes
    ("download -o {W}/out --bbox 1,2,3 --base-url {M}", 2, "--bbox"),
    ("download -o {W}/out --bbox 0.2,52.2,0.1,52.1 --base-url {M}", 2, "min_lat > max_lat"),
    ("download -o {W}/out --bbox 0,95,1,96 --base-url {M}", 2, "latitude"),
    ("download -o {W}/out --bbox 200,0,201,1 --base-url {M}", 2, "longitude"),
    ("download -o {W}/out --bbox a,b,c,d --base-url {M}", 2, "numbers"),
    ("download -o {W}/out --bbox nan,52,0.1,52.1 --base-url {M}", 2, "non-finite"),
    ("download -o {W}/out --bbox inf,52,0.1,52.1 --base-url {M}", 2, "non-finite"),
    ("download -o {W}/out --bbox 1e400,0,1,1 --base-url {M}", 2, "non-finite"),
    ("download -o {W}/out --bbox 170,-10,-170,10 --base-url {M}", 2, "antimeridian"),
    ("download -o {W}/out --bbox '' --base-url {M}", 2, "--bbox"),
    ("download -o {W}/out --bbox 1,2,3,4,5 --base-url {M}", 2, "--bbox"),
    # download: tiles
    ("download -o {W}/out --tile 500,10 --base-url {M}", 2, "outside"),
    ("download -o {W}/out --tile abc --base-url {M}", 2, "numbers"),
    ("download -o {W}/out --tile 1,2,3 --base-url {M}", 2, "lon,lat"),
    ("download -o {W}/out --tile nan,nan --base-url {M}", 2, "outside"),
    # download: countries and region files
    ("download -o {W}/out --country Atlantis --base-url {M}", 2, "unknown country"),
    ("download -o {W}/out --country '' --base-url {M}", 2, "empty"),
    ("download -o {W}/out --region-file {W}/missing.geojson --base-url {M}", 2, "does not exist"),
    ("download -o {W}/out --region-file {W}/empty.geojson --base-url {M}", 2, "cannot read"),
    ("download -o {W}/out --region-file {W}/broken.geojson --base-url {M}", 2, "cannot read"),
    ("download -o {W}/out --region-file {W}/binary.geojson --base-url {M}", 2, "cannot read"),
    ("download -o {W}/out --region-file {W}/nongeom.geojson --base-url {M}", 2, "not GeoJSON"),
    ("download -o {W}/out --region-file {W}/list.geojson --base-url {M}", 2, "not GeoJSON"),
    ("download -o {W}/out --region-file {W}/nofeatures.geojson --base-url {M}", 2, "no geometries"),
    ("download -o {W}/out --region-file {W}/nullgeom.geojson --base-url {M}", 2, "no geometries"),
    ("download -o {W}/out --region-file {W}/badcoords.geojson --base-url {M}", 2, "invalid geometry"),
    ("download -o {W}/out --region-file {W}/infpoint.geojson --base-url {M}", 2, "non-finite"),
    ("download -o {W}/out --region-file {W}/outside.geojson --base-url {M}", 2, "not valid lon/lat"),
    ("download -o {W}/out --region-file {W}/junk.shp --base-url {M}", 2, "cannot read region file"),
    ("download -o {W}/out --region-file {W}/adir --base-url {M}", 2, "cannot read region file"),
    ("download -o {W}/out --base-url {M}", 2, "exactly one"),
    ("download -o {W}/out --bbox 0.1,52.1 --tile 0.1,52.1 --base-url {M}", 2, "exactly one"),
    # download: years and bands (bounds checked before a range is expanded)
    ("download -o {W}/out --bbox 0.1,52.1 --year 1-999999999 --base-url {M}", 2, "outside 1900..2100"),
    ("download -o {W}/out --bbox 0.1,52.1 --years 2024-99999999 --base-url {M}", 2, "outside 1900..2100"),
    ("download -o {W}/out --bbox 0.1,52.1 --year 1999999999 --base-url {M}", 2, "outside 1900..2100"),
    ("download -o {W}/out --bbox 0.1,52.1 --year 9" + "9" * 5000 + " --base-url {M}", 2, "--year"),
    ("download -o {W}/out --bbox 0.1,52.1 --year abc --base-url {M}", 2, "whole numbers"),
    ("download -o {W}/out --bbox 0.1,52.1 --year 2024-2020 --base-url {M}", 2, "reversed"),
    ("download -o {W}/out --bbox 0.1,52.1 --year '' --base-url {M}", 2, "empty"),
    ("download -o {W}/out --bbox 0.1,52.1 --year 2030 --base-url {M}", 2, "not covered"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands 0-999999999 --base-url {M}", 2, "outside 0..127"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands 128 --base-url {M}", 2, "outside 0..127"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands -1 --base-url {M}", 2, "outside 0..127"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands 1,1 --base-url {M}", 2, "duplicate"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands x --base-url {M}", 2, "whole numbers"),
    # download: formats, compressions, datasets, workers
    ("download -o {W}/out --bbox 0.1,52.1 --format png --base-url {M}", 2, "unknown format"),
    ("download -o {W}/out --bbox 0.1,52.1 --format '' --base-url {M}", 2, "unknown format"),
    ("download -o {W}/out --bbox 0.1,52.1 --compress brotli --base-url {M}", 2, "brotli"),
    ("download -o {W}/out --bbox 0.1,52.1 --dataset-version v99 --base-url {M}", 2, "v99"),
    (
        "download -o {W}/out --bbox 0.1,52.1 --dataset-version ../.. --base-url {M}",
        2,
        "unknown dataset version",
    ),
    ("download -o {W}/out --bbox 0.1,52.1 --dataset-variant bogus --base-url {M}", 2, "does not exist"),
    (
        "download -o {W}/out --bbox 0.1,52.1 --dataset-variant ../x --base-url {M}",
        2,
        "invalid dataset variant",
    ),
    ("download -o {W}/out --bbox 0.1,52.1 --workers 0 --base-url {M}", 2, "--workers"),
    ("download -o {W}/out --bbox 0.1,52.1 --workers 100000 --base-url {M}", 2, "--workers"),
    # download: outputs and sources
    ("download -o {W}/afile --bbox 0.1,52.1 --base-url {M}", 2, "is a file"),
    ("download -o '' --bbox 0.1,52.1 --base-url {M}", 2, "empty"),
    ("download -o {W}/afile/sub --bbox 0.1,52.1 --base-url {M}", 1, "not a directory"),
    ("download -o /proc/geotessera-hostile --bbox 0.1,52.1 --base-url {M}", 1, "cannot write"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url ftp://example.org/x", 2, "http(s)"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {W}/nowhere", 2, "neither"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {W}/adir", 2, "no manifest"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {W}/badmirror", 1, "not a valid Parquet"),
    ("download -o {W}/out --bbox 0.1,52.1 --registry-dir {W}/nowhere --base-url {M}", 2, "registry_dir"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {DEAD} --cache-dir {W}/cache", 1, "cannot reach"),
    ("download -o {W}/out --bbox 0.1,52.1 --offline --base-url {DEAD} --cache-dir {W}/adir", 1, "offline"),
    ("download --bogus-option", 2, "No such option"),
    # info
    ("info --tiles {W}/nowhere", 2, "does not exist"),
    ("info --tiles {W}/corrupt.npy", 1, "not a valid .npy"),
    ("info --tiles {W}/huge.npy", 1, "header implies"),
    ("info --tiles {W}/adir", 2, "no GeoTIFF"),
    ("info --list-files --base-url {M}", 2, "--tiles"),
    ("info --dataset-version nonsense --base-url {M}", 2, "unknown dataset version"),
    ("info --base-url {DEAD} --cache-dir {W}/cache", 1, "cannot reach"),
    # registry build
    ("registry build {W}/nowhere", 2, "does not exist"),
    ("registry build {W}/adir", 2, "no tiles"),
    ("registry build {M} -o {W}/afile", 2, "is a file"),
    ("registry build {M} --dataset-version vX", 2, "unknown dataset version"),
    # sample build
    ("sample build {W}/sb --pixel-size 0", 2, "pixel size"),
    ("sample build {W}/sb --pixel-size -5", 2, "pixel size"),
    ("sample build {W}/sb --pixel-size nan", 2, "pixel size"),
    ("sample build {W}/sb --pixel-size 1e-9", 2, "pixel size"),
    ("sample build {W}/sb --bbox 1,1,0,0", 2, "min_lat > max_lat"),
    ("sample build {W}/sb --bbox 0,0,90,90 --pixel-size 10", 2, "tiles"),
    ("sample build {W}/sb --versions v9", 2, "v9"),
    ("sample build {W}/sb --years 1-99999999", 2, "outside 1900..2100"),
    ("sample build {W}/afile", 2, "is a file"),
    # sample serve (every case fails before anything is served)
    ("sample serve {M} --port 70000", 2, "--port"),
    ("sample serve {M} --port -1", 2, "--port"),
    ("sample serve {M} --port abc", 2, "--port"),
    ("sample serve {W}/nowhere", 2, "does not exist"),
    ("sample serve {W}/afile", 2, "is a file"),
    # zarr build
    ("zarr build {W}/nowhere {W}/z", 2, "neither a directory"),
    ("zarr build {M} {W}/z --zones 0", 2, "--zones"),
    ("zarr build {M} {W}/z --zones 61", 2, "--zones"),
    ("zarr build {M} {W}/z --workers 0", 2, "--workers"),
    ("zarr build {M} {W}/z --years 1-99999999", 2, "outside 1900..2100"),
    ("zarr build {M} {W}/afile", 2, "is a file"),
    ("zarr build {W}/adir {W}/z", 2, "no tiles"),
    ("zarr build {M} {W}/z --dataset-variant ../x", 2, "invalid dataset variant"),
    # names too long for the filesystem (a component over 255 bytes)
    ("download -o {W}/{LONG} --bbox 0.1,52.1 --base-url {M}", 2, "too long"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {W}/{LONG}", 2, "too long"),
    ("download -o {W}/out --region-file {W}/{LONG}.geojson --base-url {M}", 2, "too long"),
    ("sample build {W}/{LONG}", 2, "too long"),
    ("zarr build {M} {W}/{LONG}", 2, "too long"),
    ("registry build {M} -o {W}/{LONG}", 2, "too long"),
    ("extract {W}/{LONG}.csv -o {W}/t.parquet --base-url {M}", 2, "too long"),
    # extract, classify, similar, change, cluster
    ("extract {W}/missing.csv -o {W}/t.parquet --base-url {M}", 2, "does not exist"),
    ("extract {W}/junk.shp -o {W}/t.parquet --base-url {M}", 2, "cannot read label file"),
    ("extract {W}/nolonlat.csv -o {W}/t.parquet --base-url {M}", 2, "no lon/lat columns"),
    ("extract {W}/nolonlat.csv -o {W}/t.parquet --per-class 0 --base-url {M}", 2, "--per-class"),
    ("extract {W}/nolonlat.csv -o {W}/t.parquet --year 1-99999999 --base-url {M}", 2, "outside 1900..2100"),
    ("classify {W}/missing.parquet --label x -o {W}/m", 2, "does not exist"),
    ("classify {W}/corrupt.npy --label x -o {W}/m", 2, "cannot read table"),
    ("classify {W}/nolonlat.csv --label a -o {W}/m --folds 1", 2, "--folds"),
    ("classify {W}/nolonlat.csv --label a -o {W}/m --model svm", 2, "--model"),
    ("classify {W}/nolonlat.csv --label a -o {W}/m --block 0", 2, "--block"),
    (
        "similar --exemplars {W}/missing.geojson -o {W}/s.tif --bbox 0.1,52.1 --base-url {M}",
        2,
        "does not exist",
    ),
    (
        "similar --exemplars {W}/nofeatures.geojson -o {W}/s.tif --bbox 0.1,52.1 --base-url {M}",
        2,
        "no features",
    ),
    (
        "similar --exemplars {W}/nofeatures.geojson -o {W}/s.tif --bbox 0.1,52.1 --threshold nan",
        2,
        "threshold",
    ),
    ("similar --exemplars {W}/nofeatures.geojson -o {W}/s.tif --bbox 0.1,52.1 --top-k 0", 2, "--top-k"),
    ("similar --exemplars {W}/nofeatures.geojson -o {W}/s.tif --region 1,2,3", 2, "--region"),
    ("change --bbox 0.1,52.1 --years 2024 -o {W}/c.tif --base-url {M}", 2, "two years"),
    ("change --bbox 0.1,52.1 --years 2023,2024 --threshold -1 -o {W}/c.tif --base-url {M}", 2, "threshold"),
    ("change --bbox 200,52,201,53 --years 2023,2024 -o {W}/c.tif --base-url {M}", 2, "longitude"),
    ("cluster -k 1 --bbox 0.1,52.1 -o {W}/k.tif --base-url {M}", 2, "-k"),
    ("cluster -k 255 --bbox 0.1,52.1 -o {W}/k.tif --base-url {M}", 2, "-k"),
    ("cluster -k 3 --sample-size 1 --bbox 0.1,52.1 -o {W}/k.tif --base-url {M}", 2, "--sample-size"),
    ("cluster -k 3 --region Atlantis -o {W}/k.tif --base-url {M}", 2, "unknown country"),
    ("cluster -k 3 --bbox 0.1,52.1 -o {W}/k.tif --zarr {W}/nowhere", 2, "nor an existing directory"),
    ("cluster -k 3 --bbox 0.1,52.1 -o {W}/k.tif --base-url {M} --dataset-variant ../x", 2, "invalid dataset"),
    ("cluster -k 3 --bbox 0.1,52.1 -o {W}/k.tif --base-url {DEAD} --cache-dir {W}/cache", 1, "cannot reach"),
    # visualize, webmap, serve, coverage
    ("visualize {W}/nowhere {W}/m.tif", 2, "does not exist"),
    ("visualize {W}/adir {W}/m.tif", 2, "no GeoTIFF"),
    ("visualize {W}/corrupt.npy {W}/m.tif", 2, "not a valid .npy"),  # issue 9: non-raster input, exit 2
    ("visualize {W}/adir {W}/m.tif --n-components 0", 2, "--n-components"),
    ("visualize {W}/adir {W}/m.tif --balance weird", 2, "--balance"),
    ("visualize {W}/adir {W}/m.tif --percentile-low 90 --percentile-high 10", 2, "--percentile-low"),
    ("visualize {TILE} {W}/m.tif --crs EPSG:99999999", 2, "unknown CRS"),
    ("visualize {TILE} {W}/m.tif --crs nonsense", 2, "unknown CRS"),
    ("visualize {TILE} {W}/afile/m.tif", 1, "cannot write"),
    ("webmap {W}/nowhere.tif", 2, "does not exist"),
    ("webmap {W}/corrupt.npy", 2, "not a readable raster"),
    ("webmap {W}/afile --min-zoom -1", 2, "zoom"),
    ("webmap {W}/afile --min-zoom 12 --max-zoom 5", 2, "zoom"),
    ("webmap {W}/afile --max-zoom 99", 2, "zoom"),
    ("webmap {W}/afile --initial-zoom 40", 2, "--initial-zoom"),
    ("webmap {W}/afile --port 70000", 2, "--port"),
    ("serve {W}/nowhere", 2, "does not exist"),
    ("serve {W}/afile", 2, "is a file"),
    ("serve {W}/adir --port 70000", 2, "--port"),
    ("serve {W}/adir --html ../../etc/passwd --no-open", 2, "--html"),
    ("coverage --base-url {M} -o {W}/c.png --width 10", 2, "width"),
    ("coverage --base-url {M} -o {W}/c.png --width 99999999", 2, "width"),
    ("coverage --base-url {M} -o {W}/c.png --tile-alpha 2", 2, "alpha"),
    ("coverage --base-url {M} -o {W}/c.png --tile-alpha nan", 2, "alpha"),
    ("coverage --base-url {M} -o {W}/c.png --tile-size 0", 2, "tile size"),
    ("coverage --base-url {M} -o {W}/c.png --tile-color notacolour", 2, "colour"),
    ("coverage --base-url {M} -o {W}/c.png --country Atlantis", 2, "unknown country"),
    ("coverage --base-url {M} -o {W}/c.png --years 1-99999999", 2, "outside 1900..2100"),
    ("coverage --base-url {M} -o {W}/afile/c.png", 1, "cannot write"),
    ("coverage --base-url {DEAD} -o {W}/c.png --cache-dir {W}/cache", 1, "cannot reach"),
    # the root
    ("bogus-command", 2, "No such command"),
    ("--bogus", 2, "No such option"),
]


def _write_world(w: Path) -> None:
    """The hostile files the corpus points at."""
    import numpy as np

    w.mkdir(parents=True, exist_ok=True)
    files = {
        "empty.geojson": b"",
        "broken.geojson": b'{"type":',
        "binary.geojson": os.urandom(512),
        "nongeom.geojson": b'{"hello": 1}',
        "list.geojson": b"[1, 2, 3]",
        "nofeatures.geojson": b'{"type": "FeatureCollection", "features": []}',
        "nullgeom.geojson": b'{"type": "FeatureCollection", "features": [{"geometry": null}]}',
        "badcoords.geojson": b'{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}',
        "infpoint.geojson": b'{"type": "Point", "coordinates": [1e999, 52]}',
        "outside.geojson": b'{"type": "Polygon", "coordinates": [[[0, 0], [500, 0], [500, 1], [0, 0]]]}',
        "junk.shp": os.urandom(300),
        "afile": b"not a directory",
        "corrupt.npy": b"not an npy file",
        "nolonlat.csv": b"a,b\n1,2\n",
    }
    for name, data in files.items():
        (w / name).write_bytes(data)
    with (w / "huge.npy").open("wb") as f:  # an element count that overflows int64
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|i1", "fortran_order": False, "shape": (2**32, 2**32, 1)}
        )
    (w / "adir").mkdir(exist_ok=True)
    (w / "badmirror" / "v1").mkdir(parents=True, exist_ok=True)
    (w / "badmirror" / "v1" / "manifest.parquet").write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")


@pytest.fixture(scope="module", autouse=True)
def _imported() -> None:
    """The modules the commands import, imported once before any case is measured: a case's
    peak is what the command allocates, not the import of numpy, GDAL or scikit-learn."""
    for name in (
        "geotessera.client",
        "geotessera.countries",
        "geotessera.store",
        "geotessera.analysis.extraction",
        "geotessera.analysis.models",
        "geotessera.analysis.clustering",
        "geotessera.sample.build",
        "geotessera.visualization",
        "matplotlib.pyplot",
        "geotessera.registry.scan",
        "pyogrio",
        "sklearn.ensemble",
        "dask.array",
        "geopandas",
    ):
        importlib.import_module(name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("hostile")
    _write_world(w)
    return w


@pytest.fixture(scope="module")
def dead_url() -> str:
    """A loopback URL whose port was free a moment ago (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tessera-embeddings"


def _args(line: str, mirror: Path, world: Path, dead: str) -> list[str]:
    tile = mirror / "v1" / "global_0.1_degree_representation" / "2024" / "grid_0.05_52.05"
    return shlex.split(line.format(M=mirror, W=world, DEAD=dead, LONG="x" * 300, TILE=tile))


def _check_output(stderr: str, stdout: str, word: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    assert word in errors[0], errors[0]
    assert "Traceback" not in stderr + stdout and "unexpected" not in errors[0], stderr
    assert not any(ln.startswith(("WARNING", "ERROR")) for ln in lines), stderr


def test_the_corpus_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 60
    commands = {" ".join(w for w in shlex.split(c)[:2] if not w.startswith("-")) for c, _, _ in CASES}
    every = ("download", "info", "registry build", "sample build", "sample serve", "zarr build")
    analysis = ("extract", "classify", "similar", "change", "cluster")
    for command in (*every, *analysis, "visualize", "webmap", "serve", "coverage"):
        assert any(c.startswith(command) for c in commands), command


@pytest.mark.parametrize(("line", "code", "word"), CASES, ids=[c[:70] for c, _, _ in CASES])
def test_hostile_command_line(
    line: str,
    code: int,
    word: str,
    tiny_store: Path,
    world: Path,
    dead_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = _args(line, tiny_store, world, dead_url)
    monkeypatch.chdir(tmp_path)
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cli, args, env=ENV)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit | None), result.exception
    _check_output(result.stderr, result.stdout, word)
    assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MiB"


SUBPROCESS_CASES = [
    ("download -o {W}/out --bbox 0.1,52.1 --year 1-999999999 --base-url {M}", 2, "outside 1900..2100"),
    ("download -o {W}/out --bbox 0.1,52.1 --bands 0-999999999 --base-url {M}", 2, "outside 0..127"),
    ("download -o {W}/out --region-file {W}/infpoint.geojson --base-url {M}", 2, "non-finite"),
    ("info --tiles {W}/huge.npy", 1, "header implies"),
    ("download -o {W}/out --bbox 0.1,52.1 --base-url {DEAD} --cache-dir {W}/cache", 1, "cannot reach"),
]


def _limit_memory() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


@pytest.mark.parametrize(
    ("line", "code", "word"), SUBPROCESS_CASES, ids=[c[:60] for c, _, _ in SUBPROCESS_CASES]
)
def test_hostile_command_line_as_a_process(
    line: str, code: int, word: str, tiny_store: Path, world: Path, dead_url: str, tmp_path: Path
) -> None:
    exe = Path(sys.executable).with_name("geotessera")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOTESSERA_")} | {
        "GEOTESSERA_RETRIES": "0"
    }
    proc = subprocess.run(
        [str(exe), *_args(line, tiny_store, world, dead_url)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == code, proc.stderr
    _check_output(proc.stderr, proc.stdout, word)
