"""The analysis commands: an end-to-end run over the served sample store, and the bad-input corpus.

Every bad input gets one ``error:`` line on stderr and exit 2 (no traceback).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio
from click.testing import CliRunner

from geotessera.cli import cli
from geotessera.sample.serve import SampleServer
from support.analysis import labelled_points

BBOX = "0.0,52.0,0.4,52.3"


@pytest.fixture(scope="module")
def labels_csv(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pts, names = labelled_points(tiny_store, 2024, 30, seed=11)
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    pd.DataFrame({"lon": pts[:, 0], "lat": pts[:, 1], "landcover": names, "site": range(len(names))}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture(scope="module")
def table(labels_csv: Path, tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("table")
    out = d / "table.parquet"
    r = CliRunner().invoke(
        cli,
        ["extract", str(labels_csv), "-o", str(out), "--base-url", str(tiny_store), "--cache-dir", str(d)],
    )
    assert r.exit_code == 0, r.stderr
    return out


def _source(tiny_store: Path, tmp_path: Path) -> list[str]:
    return ["--base-url", str(tiny_store), "--cache-dir", str(tmp_path / "cache")]


def test_extract_keeps_the_users_columns(table: Path) -> None:
    t = gpd.read_parquet(table)
    assert {"lon", "lat"}.isdisjoint(t.columns)  # turned into the geometry
    assert {"landcover", "site", "year", "tile", "row", "col", "status", "emb_0", "emb_127"} <= set(t.columns)
    assert len(t) == 120 and (t["status"] == "valid").all()


def test_extract_csv_output_and_several_years(labels_csv: Path, tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    args = ["extract", str(labels_csv), "-o", str(out), "--year", "2023,2024"]
    args += ["--cache-dir", str(tmp_path / "c"), "--embeddings-dir", str(tmp_path / "tiles")]
    with SampleServer(tiny_store, port=0) as server:
        url = server.base_url
        r = CliRunner().invoke(cli, [*args, "--base-url", url, "--workers", "4"])
    assert r.exit_code == 0, r.stderr
    t = pd.read_csv(out)
    assert len(t) == 240 and sorted(t["year"].unique()) == [2023, 2024]
    assert list((tmp_path / "tiles").rglob("*_scales.npy"))  # fetched into --embeddings-dir
    # tiles on disk are never fetched again: the same extraction works with the endpoint gone
    again = CliRunner().invoke(cli, [*args, "--base-url", url, "--offline"])
    assert again.exit_code == 0, again.stderr
    assert pd.read_csv(out).equals(t)


def test_classify_predict_similar_change_cluster(table: Path, tiny_store: Path, tmp_path: Path) -> None:
    src = _source(tiny_store, tmp_path)
    model_dir, map_path = tmp_path / "model", tmp_path / "map.tif"
    r = CliRunner().invoke(
        cli,
        [
            "classify",
            str(table),
            "--label",
            "landcover",
            "-o",
            str(model_dir),
            "--predict",
            BBOX,
            "-o",
            str(map_path),
            "--proba",
            "--block",
            "128",
            *src,
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert "overall accuracy" in r.stdout and "confusion matrix" in r.stdout
    for name in ("model.skops", "model.json", "report.json", "report.txt", "confusion_matrix.png"):
        assert (model_dir / name).is_file(), name
    with rasterio.open(map_path) as ds, rasterio.open(tmp_path / "map_proba.tif") as pr:
        assert (
            ds.dtypes == ("uint8",)
            and pr.count == 4
            and set(pr.descriptions) == {"cropland", "forest", "grassland", "urban"}
        )
    assert json.loads((tmp_path / "map.tif.classes.json").read_text())["classes"][0]["name"] == "cropland"

    ex = tmp_path / "ex.geojson"
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.15], [52.15]), crs=4326).to_file(ex)
    r = CliRunner().invoke(
        cli,
        [
            "similar",
            "--exemplars",
            str(ex),
            "--region",
            BBOX,
            "--year",
            "2024",
            "-o",
            str(tmp_path / "sim.tif"),
            "--threshold",
            "0.9",
            "--top-k",
            "3",
            *src,
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "sim_mask.tif").is_file() and (tmp_path / "sim_polygons.geojson").is_file()
    assert (tmp_path / "sim_top.parquet").is_file() and "similarity" in r.stdout

    r = CliRunner().invoke(
        cli, ["change", "--bbox", BBOX, "--years", "2023,2024", "-o", str(tmp_path / "ch.tif"), *src]
    )
    assert r.exit_code == 0, r.stderr
    assert "changed:" in r.stdout and json.loads((tmp_path / "ch.json").read_text())["years"] == [2023, 2024]

    r = CliRunner().invoke(
        cli, ["cluster", "--region", BBOX, "--year", "2024", "-k", "3", "-o", str(tmp_path / "k.tif"), *src]
    )
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "k_centroids.json").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bad_tables(tmp: Path, table: Path) -> dict[str, Path]:
    t = gpd.read_parquet(table)
    one = t.copy()
    one["landcover"] = "forest"
    one.to_parquet(tmp / "one.parquet")
    t.iloc[:0].to_parquet(tmp / "empty.parquet")
    return {"one": tmp / "one.parquet", "empty": tmp / "empty.parquet"}


def test_bad_inputs_get_one_error_line_and_exit_2(table: Path, tiny_store: Path, tmp_path: Path) -> None:
    src = _source(tiny_store, tmp_path)
    bad = _bad_tables(tmp_path, table)
    m = str(tmp_path / "m")
    cases = {
        "no label column": ["classify", str(table), "--label", "nope", "-o", m],
        "one class": ["classify", str(bad["one"]), "--label", "landcover", "-o", m],
        "empty table": ["classify", str(bad["empty"]), "--label", "landcover", "-o", m],
        "unknown model": ["classify", str(table), "--label", "landcover", "--model", "svm", "-o", m],
        "missing table": ["classify", str(tmp_path / "none.parquet"), "--label", "x", "-o", m],
        "no coverage": [
            "cluster",
            "--bbox",
            "10,10,10.1,10.1",
            "-k",
            "3",
            "-o",
            str(tmp_path / "k.tif"),
            *src,
        ],
        "unreachable scheduler": [
            "cluster",
            "--bbox",
            BBOX,
            "-k",
            "3",
            "-o",
            str(tmp_path / "k.tif"),
            "--scheduler",
            f"tcp://127.0.0.1:{_free_port()}",
            *src,
        ],
        "two regions": [
            "cluster",
            "--bbox",
            BBOX,
            "--country",
            "UK",
            "-k",
            "3",
            "-o",
            str(tmp_path / "k.tif"),
        ],
        "one year for change": ["change", "--bbox", BBOX, "--years", "2024", "-o", str(tmp_path / "c.tif")],
        "bad allocation": ["extract", str(table), "-o", str(tmp_path / "t.parquet"), "--allocation", "cubic"],
        "missing labels": ["extract", str(tmp_path / "none.csv"), "-o", str(tmp_path / "t.parquet"), *src],
        "table not parquet or csv": ["extract", str(table), "-o", str(tmp_path / "t.xlsx"), *src],
        "map not a GeoTIFF (cluster)": [
            "cluster",
            "--bbox",
            BBOX,
            "-k",
            "3",
            "-o",
            str(tmp_path / "k.png"),
            *src,
        ],
        "map not a GeoTIFF (change)": [
            "change",
            "--bbox",
            BBOX,
            "--years",
            "2023,2024",
            "-o",
            str(tmp_path / "c.jpg"),
            *src,
        ],
        "map not a GeoTIFF (classify)": [
            "classify",
            str(table),
            "--label",
            "landcover",
            "-o",
            str(tmp_path / "model_png"),
            "--predict",
            BBOX,
            "-o",
            str(tmp_path / "m.png"),
            *src,
        ],
        "label not in labels": [
            "extract",
            str(table),
            "--label",
            "nope",
            "-o",
            str(tmp_path / "t.parquet"),
            *src,
        ],
    }
    for name, args in cases.items():
        r = CliRunner().invoke(cli, args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2, (name, r.exit_code, r.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr)
        assert "Traceback" not in r.stderr
        if name == "table not parquet or csv":
            assert "expected a name ending in .parquet" in lines[0] and not (tmp_path / "t.xlsx").exists()
        if name.startswith("map not a GeoTIFF"):
            assert "maps are GeoTIFFs" in lines[0], (name, lines[0])
            assert not (tmp_path / "model_png").exists()  # refused before training
            assert not [p for p in tmp_path.iterdir() if p.suffix in (".png", ".jpg")]
        if name == "two regions":
            assert "exactly one of --region, --bbox, --tile, --region-file, --country" in lines[0]
            assert "(got --bbox, --country)" in lines[0], lines[0]


def test_a_model_refuses_another_dataset(table: Path, tiny_store: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    assert (
        CliRunner()
        .invoke(cli, ["classify", str(table), "--label", "landcover", "-o", str(model_dir)])
        .exit_code
        == 0
    )
    r = CliRunner().invoke(
        cli,
        [
            "classify",
            str(table),
            "--label",
            "landcover",
            "-o",
            str(model_dir),
            "--predict",
            BBOX,
            "--map",
            str(tmp_path / "m.tif"),
            "--dataset-version",
            "v1.1",
            "--dataset-variant",
            "cambridge",
            *_source(tiny_store, tmp_path),
        ],
    )
    assert r.exit_code == 2 and r.stderr.startswith("error: the model was trained on dataset 1.0/vultr"), (
        r.stderr
    )


def test_extract_of_a_year_without_tiles_is_refused(
    labels_csv: Path, tiny_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(
        cli, ["extract", str(labels_csv), "-o", str(out), "--year", "2019", *_source(tiny_store, tmp_path)]
    )
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr)  # nothing covered, not a table of 'outside' rows
    assert len(lines) == 1 and lines[0].startswith("error: ") and "2019" in lines[0], r.stderr
    assert not out.exists()


def test_classify_predicts_the_year_it_was_trained_on(
    labels_csv: Path, tiny_store: Path, tmp_path: Path
) -> None:
    src = _source(tiny_store, tmp_path)
    table = tmp_path / "t2023.parquet"
    r = CliRunner().invoke(cli, ["extract", str(labels_csv), "-o", str(table), "--year", "2023", *src])
    assert r.exit_code == 0, r.stderr
    map_path = tmp_path / "m.tif"
    args = ["classify", str(table), "--label", "landcover", "-o", str(tmp_path / "model")]
    r = CliRunner().invoke(cli, [*args, "--predict", BBOX, "-o", str(map_path), *src])
    assert r.exit_code == 0, r.stderr
    with rasterio.open(map_path) as ds:
        assert ds.tags()["TESSERA_YEAR"] == "2023"  # not the 2024 of download's default
    r = CliRunner().invoke(cli, [*args, "--predict", BBOX, "-o", str(map_path), "--year", "2024", *src])
    assert r.exit_code == 0, r.stderr
    with rasterio.open(map_path) as ds:
        assert ds.tags()["TESSERA_YEAR"] == "2024"  # an explicit --year wins
    t = gpd.read_parquet(table)
    both = tmp_path / "both.parquet"
    pd.concat([t, t.assign(year=2024)]).pipe(gpd.GeoDataFrame).to_parquet(both)
    r = CliRunner().invoke(
        cli,
        [
            "classify",
            str(both),
            "--label",
            "landcover",
            "-o",
            str(tmp_path / "m2"),
            "--predict",
            BBOX,
            "-o",
            str(map_path),
            *src,
        ],
    )
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "--year" in lines[0], r.stderr


def test_proba_without_predict_is_a_usage_error(table: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli, ["classify", str(table), "--label", "landcover", "-o", str(tmp_path / "m"), "--proba"]
    )
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "--proba" in lines[0], r.stderr
    assert not (tmp_path / "m").exists()  # refused before training


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        (["--polygons", "p.geojson"], "--threshold"),
        (["--top-k-output", "t.parquet"], "--top-k"),
        (["--top-k", "5", "--top-k-output", "t.xlsx"], ".parquet"),
    ],
)
def test_similar_outputs_need_the_option_that_makes_them(
    extra: list[str], word: str, tiny_store: Path, tmp_path: Path
) -> None:
    ex = tmp_path / "ex.csv"
    ex.write_text("lon,lat\n0.05,52.05\n")
    args = ["similar", "--exemplars", str(ex), "--bbox", BBOX, "-o", str(tmp_path / "s.tif")]
    r = CliRunner().invoke(cli, [*args, *extra, *_source(tiny_store, tmp_path)])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and word in lines[0], r.stderr  # not silently unwritten
    assert not (tmp_path / "s.tif").exists()


def test_similar_refuses_a_map_name_that_is_not_a_geotiff(tiny_store: Path, tmp_path: Path) -> None:
    ex = tmp_path / "ex.csv"
    ex.write_text("lon,lat\n0.05,52.05\n")
    args = ["similar", "--exemplars", str(ex), "--bbox", BBOX, "-o", str(tmp_path / "s.png")]
    r = CliRunner().invoke(cli, [*args, *_source(tiny_store, tmp_path)])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "maps are GeoTIFFs" in lines[0], r.stderr
    assert not (tmp_path / "s.png").exists()
