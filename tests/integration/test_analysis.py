"""geotessera.analysis end to end on the sample store (100 m pixels) against its ground truth.

The "done when" criteria of the analysis issue: spatially cross-validated accuracy >= 0.9
from 50 labelled points per class; the predicted map agrees with the class map on >= 90 %
of land pixels not used for training; a forest exemplar's similarity separates forest
(ROC AUC >= 0.95); the 2023 -> 2024 change map is high where the land cover changed
(AUC >= 0.95); a two-worker LocalCluster writes the same bytes as local threads. The
tile client and the Zarr store give the same values throughout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from sklearn.metrics import roc_auc_score

from geotessera import GeoTessera
from geotessera.analysis import change, cluster, extract, load_model, predict, save_model, similar, train
from geotessera.datasets import DatasetId
from geotessera.errors import MixedDatasetError, NotCoveredError
from geotessera.sample.content import FOREST, WATER
from geotessera.store import GeoTesseraZarr, build_zarr
from support.analysis import CAMBRIDGE, class_maps, labelled_points, owned_pixels, values_at


@pytest.fixture(scope="module")
def zarr_store(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analysis_zarr") / "v1.zarr"
    build_zarr(tiny_store, path, dataset=DatasetId(), workers=2)
    return path


@pytest.fixture(scope="module")
def client(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> GeoTessera:
    return GeoTessera(base_url=str(tiny_store), cache_dir=tmp_path_factory.mktemp("analysis_cache"))


@pytest.fixture(scope="module")
def store(zarr_store: Path) -> GeoTesseraZarr:
    return GeoTesseraZarr(zarr_store)


@pytest.fixture(scope="module")
def labels(tiny_store: Path) -> gpd.GeoDataFrame:
    pts, names = labelled_points(tiny_store, 2024, 50, seed=3)
    return gpd.GeoDataFrame({"landcover": names}, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326)


@pytest.fixture(scope="module")
def trained(client: GeoTessera, labels: gpd.GeoDataFrame) -> Any:
    table = extract(client, labels, 2024)
    return train(table, "landcover", model="rf", cv_block_m=1000, folds=5)


def test_extraction_is_the_same_from_tiles_and_from_the_store(
    client: GeoTessera, store: GeoTesseraZarr, labels: gpd.GeoDataFrame
) -> None:
    a = extract(client, labels, [2023, 2024])
    b = extract(store, labels, [2023, 2024])
    assert len(a) == len(b) == 2 * len(labels)
    emb = [f"emb_{i}" for i in range(128)]
    assert np.array_equal(a[emb].to_numpy(), b[emb].to_numpy(), equal_nan=True)
    for col in ("tile", "row", "col", "status", "year", "landcover", "dataset"):
        assert (a[col] == b[col]).all(), col
    assert set(a.loc[a["year"] == 2024, "status"]) == {"valid"}
    outside = a[a["status"] == "outside"]  # the tile missing from 2023 in the sample store
    assert set(outside["tile"]) == {"grid_0.35_52.25"} and set(outside["year"]) == {2023}
    assert (outside["row"] == -1).all() and outside[emb].isna().all().all()
    assert a[emb].dtypes.unique().tolist() == [np.dtype("float32")]
    assert a["dataset"].iloc[0] == "1.0/vultr"


def test_extraction_reads_the_pixel_of_the_tile_grid(client: GeoTessera, tiny_store: Path) -> None:
    """Row/col name the tile pixel under each point: its embedding equals the tile's own pixel."""
    pts, _ = labelled_points(tiny_store, 2024, 5, seed=9)
    table = extract(
        client, gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326), 2024
    )
    for _, row in table.iterrows():
        lon, lat = [float(v) for v in row["tile"].removeprefix("grid_").split("_")]
        tile, _, _ = client.fetch_embedding(lon, lat, 2024)
        np.testing.assert_array_equal(
            tile[row["row"], row["col"]], row[[f"emb_{i}" for i in range(128)]].to_numpy(float)
        )


def test_polygon_samples_are_stratified_and_seeded(client: GeoTessera, store: GeoTesseraZarr) -> None:
    polys = gpd.GeoDataFrame(
        {"kind": ["a", "a", "b"]},
        geometry=[
            __import__("shapely").box(0.05, 52.05, 0.08, 52.07),
            __import__("shapely").box(0.10, 52.05, 0.12, 52.06),
            __import__("shapely").box(0.20, 52.10, 0.21, 52.11),
        ],
        crs=4326,
    )
    t1 = extract(client, polys, 2024, label="kind", per_class=20, seed=1)
    t2 = extract(store, polys, 2024, label="kind", per_class=20, seed=1)
    assert t1["kind"].value_counts().to_dict() == {"a": 20, "b": 20}
    assert (t1.geometry.x.to_numpy() == t2.geometry.x.to_numpy()).all()
    assert set(t1["polygon_id"]) <= {0, 1, 2}
    everything = extract(client, polys, 2024)
    assert len(everything) > 40 and (everything["polygon_id"].value_counts() > 0).all()


def test_spatial_cv_accuracy_and_map_agreement(
    client: GeoTessera,
    store: GeoTesseraZarr,
    trained: Any,
    labels: gpd.GeoDataFrame,
    tiny_store: Path,
    tmp_path: Path,
) -> None:
    model, report = trained
    assert report["accuracy"] >= 0.9, report
    assert report["n_samples"] == 200 and report["folds"] == 5
    [tif] = predict(model, client, CAMBRIDGE, 2024, tmp_path / "map.tif")
    [tif_z] = predict(model, store, CAMBRIDGE, 2024, tmp_path / "map_zarr.tif")
    assert tif.read_bytes() == tif_z.read_bytes()  # the same map from tiles and from the store
    with rasterio.open(tif) as ds:
        names = json.loads(ds.tags()["CLASS_NAMES"])
        assert ds.colormap(1)[0][:3] != (0, 0, 0) and ds.nodata == 255 and ds.profile["tiled"]
    trained_at = {
        (round(x, 9), round(y, 9)) for x, y in zip(labels.geometry.x, labels.geometry.y, strict=True)
    }
    agree = total = 0
    for m in class_maps(tiny_store, 2024):
        pred = values_at(tif, m)
        lon, lat, idx = owned_pixels(m)
        truth = m.codes.ravel()[idx]
        got = pred.ravel()[idx]
        keep = (truth != WATER) & np.array(
            [(round(a, 9), round(b, 9)) not in trained_at for a, b in zip(lon, lat, strict=True)]
        )
        want = np.array(["water", "urban", "cropland", "grassland", "forest"])[truth[keep]]
        got_names = np.array([names[int(v)] if np.isfinite(v) else "" for v in got[keep]])
        agree += int((got_names == want).sum())
        total += int(keep.sum())
    assert total > 50_000
    assert agree / total >= 0.9, agree / total


def test_model_round_trip_and_dataset_guard(trained: Any, tiny_store: Path, tmp_path: Path) -> None:
    model, _ = trained
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.class_names == model.class_names and loaded.dataset == {
        "version": "1.0",
        "variant": "vultr",
    }
    other = GeoTessera(
        dataset_version="v1.1", dataset_variant="cambridge", base_url=str(tiny_store), cache_dir=tmp_path
    )
    with pytest.raises(MixedDatasetError):
        predict(loaded, other, CAMBRIDGE, 2024, tmp_path / "x.tif")


def test_forest_similarity_separates_forest(store: GeoTesseraZarr, tiny_store: Path, tmp_path: Path) -> None:
    pts, names = labelled_points(tiny_store, 2024, 3, seed=5)
    forest = pts[[i for i, n in enumerate(names) if n == "forest"][:1]]
    ex = gpd.GeoDataFrame(geometry=gpd.points_from_xy(forest[:, 0], forest[:, 1]), crs=4326)
    r = similar(store, ex, CAMBRIDGE, 2024, tmp_path / "sim.tif", threshold=0.95, top_k=5)
    scores, truth = [], []
    for m in class_maps(tiny_store, 2024):
        sim = values_at(r.rasters[0], m).ravel()
        _, _, idx = owned_pixels(m)
        codes = m.codes.ravel()[idx]
        ok = (codes != WATER) & np.isfinite(sim[idx])
        scores.append(sim[idx][ok])
        truth.append(codes[ok] == FOREST)
    auc = roc_auc_score(np.concatenate(truth), np.concatenate(scores))
    assert auc >= 0.95, auc
    assert r.masks and r.polygons is not None and r.polygons.exists()
    polys = gpd.read_file(r.polygons)
    assert len(polys) > 0 and polys.crs.to_epsg() == 4326
    top = r.top
    assert len(top) == 5 and top["similarity"].is_monotonic_decreasing
    rc = top[["row", "col"]].to_numpy()
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(rc[i] - rc[j]).max() > 1  # mutually non-adjacent


def test_change_map_is_high_where_the_land_cover_changed(
    client: GeoTessera, store: GeoTesseraZarr, tiny_store: Path, tmp_path: Path
) -> None:
    r = change(client, CAMBRIDGE, (2023, 2024), tmp_path / "change.tif")
    r_z = change(store, CAMBRIDGE, (2023, 2024), tmp_path / "change_z.tif")
    assert r.rasters[0].read_bytes() == r_z.rasters[0].read_bytes()
    before = {m.cell: m for m in class_maps(tiny_store, 2023)}
    scores, truth = [], []
    for m in class_maps(tiny_store, 2024):
        if m.cell not in before:
            continue
        d = values_at(r.rasters[0], m).ravel()
        _, _, idx = owned_pixels(m)
        a, b = before[m.cell].codes.ravel()[idx], m.codes.ravel()[idx]
        ok = (a != WATER) & (b != WATER) & np.isfinite(d[idx])
        scores.append(d[idx][ok])
        truth.append(a[ok] != b[ok])
    y = np.concatenate(truth)
    assert y.sum() > 100
    auc = roc_auc_score(y, np.concatenate(scores))
    assert auc >= 0.95, auc
    s = json.loads(r.summary_path.read_text())
    assert s["valid_pixels"] == sum(s["histogram"]["counts"]) and 0 < s["changed_share"] < 0.1


def test_clusters_have_a_colour_table_and_centroids(store: GeoTesseraZarr, tmp_path: Path) -> None:
    r = cluster(store, CAMBRIDGE, 2024, 4, tmp_path / "clusters.tif", sample_size=2000, seed=1)
    with rasterio.open(r.rasters[0]) as ds:
        ids = np.unique(ds.read(1))
        assert set(ids.tolist()) == {0, 1, 2, 3, 255}
        assert ds.colormap(1)[3][3] == 255
    assert r.centroids.shape == (4, 128)
    assert len(json.loads(r.centroids_path.read_text())["centroids"]) == 4


def test_a_region_across_zones_writes_one_map_per_zone(
    trained: Any, client: GeoTessera, tmp_path: Path
) -> None:
    model, _ = trained
    paths = predict(model, client, (5.9, 45.0, 6.1, 45.1), 2024, tmp_path / "seam.tif")
    assert [p.name for p in paths] == ["seam_utm31n.tif", "seam_utm32n.tif"]
    for p, epsg in zip(paths, (32631, 32632), strict=True):
        with rasterio.open(p) as ds:
            assert ds.crs.to_epsg() == epsg and (ds.read(1) != 255).any()


def test_a_region_with_no_coverage_is_refused(trained: Any, client: GeoTessera, tmp_path: Path) -> None:
    with pytest.raises(NotCoveredError):
        predict(trained[0], client, (10.0, 10.0, 10.1, 10.1), 2024, tmp_path / "none.tif")


def test_local_cluster_writes_the_same_bytes(
    trained: Any, store: GeoTesseraZarr, client: GeoTessera, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    model, _ = trained
    local = predict(model, client, CAMBRIDGE, 2024, tmp_path / "local.tif", block=128)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
        Client(lc) as dc,
    ):
        remote = predict(model, client, CAMBRIDGE, 2024, tmp_path / "cluster.tif", client=dc, block=128)
        remote_z = predict(model, store, CAMBRIDGE, 2024, tmp_path / "cluster_z.tif", client=dc, block=128)
        sim = similar(
            store, _forest_exemplar(client), CAMBRIDGE, 2024, tmp_path / "s.tif", client=dc, block=128
        )
    sim_local = similar(store, _forest_exemplar(client), CAMBRIDGE, 2024, tmp_path / "s2.tif", block=128)
    assert local[0].read_bytes() == remote[0].read_bytes() == remote_z[0].read_bytes()
    assert sim.rasters[0].read_bytes() == sim_local.rasters[0].read_bytes()


def _forest_exemplar(client: GeoTessera) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.15], [52.15]), crs=4326)


def test_regression_on_a_numeric_label(client: GeoTessera, labels: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """A float label is a regression target: R² and RMSE in the report, a float32 map."""
    height = {"urban": 8.0, "cropland": 1.0, "grassland": 0.5, "forest": 20.0}
    table = extract(client, labels, 2024)
    table["height_m"] = table["landcover"].map(height).astype(float)
    model, report = train(table, "height_m", model="ridge", folds=4)
    assert model.task == "regression" and report["r2"] > 0.9 and report["rmse"] < 3.0
    [tif] = predict(model, client, (0.1, 52.1, 0.2, 52.2), 2024, tmp_path / "height.tif")
    with rasterio.open(tif) as ds:
        data = ds.read(1)
        assert ds.dtypes == ("float32",) and np.isnan(ds.nodata)
    finite = data[np.isfinite(data)]
    assert finite.size > 1000 and -5 < np.median(finite) < 25


def test_max_mode_takes_the_best_exemplar(store: GeoTesseraZarr, tmp_path: Path) -> None:
    ex = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.15, 0.05], [52.15, 52.05]), crs=4326)
    best = similar(store, ex, (0.1, 52.1, 0.2, 52.2), 2024, tmp_path / "max.tif", mode="max")
    one = [similar(store, ex.iloc[[i]], (0.1, 52.1, 0.2, 52.2), 2024, tmp_path / f"{i}.tif") for i in (0, 1)]
    with (
        rasterio.open(best.rasters[0]) as b,
        rasterio.open(one[0].rasters[0]) as a0,
        rasterio.open(one[1].rasters[0]) as a1,
    ):
        np.testing.assert_allclose(b.read(1), np.fmax(a0.read(1), a1.read(1)), rtol=1e-6)


class _Killed(BaseException):
    """A simulated kill (nothing in the library catches it)."""


SMALL = (0.1, 52.1, 0.2, 52.2)


def _describing(what: str, trained: Any, client: GeoTessera, store: GeoTesseraZarr) -> tuple[Any, str]:
    """(run(output, variant) writing a map and its JSON description, the description's suffix)."""
    if what == "predict":
        from sklearn.neighbors import KNeighborsClassifier

        from geotessera.analysis import TrainedModel

        x = np.random.default_rng(0).normal(size=(20, 128))
        other = TrainedModel(
            KNeighborsClassifier(3).fit(x, np.arange(20) % 2),
            "classification",
            "knn",
            "crop",
            ["wheat", "barley"],
            list(range(128)),
            [2024],
            None,
        )
        models = {0: trained[0], 1: other}
        return (lambda out, v: predict(models[v], client, SMALL, 2024, out)), ".tif.classes.json"
    if what == "cluster":
        return (
            lambda out, v: cluster(store, SMALL, 2024, 3, out, sample_size=300, seed=v)
        ), "_centroids.json"
    return (lambda out, v: change(client, SMALL, (2023, 2024), out, threshold=0.2 + v / 10)), ".json"


@pytest.mark.parametrize("what", ["predict", "cluster", "change"])
def test_a_map_written_again_and_interrupted_keeps_no_description_of_the_run_before(
    what: str, trained: Any, client: GeoTessera, store: GeoTesseraZarr, tmp_path: Path, monkeypatch: Any
) -> None:
    """A map's JSON description (classes, centroids, statistics) must not outlive the map it
    describes: a run killed just after its map was moved into place must leave no description,
    or its own, never the one the run before wrote for another map (another model's classes)."""
    import geotessera.analysis.rasters as rasters

    run, suffix = _describing(what, trained, client, store)
    out, ref = tmp_path / "map.tif", tmp_path / "ref" / "map.tif"
    run(out, 0)
    run(ref, 1)
    described, want = out.with_name("map" + suffix), ref.with_name("map" + suffix).read_text()
    assert described.read_text() != want
    commit = rasters.commit_path

    def commit_then_die(tmp: Path, path: Path, **kw: Any) -> None:
        commit(tmp, path, **kw)
        raise _Killed(path)

    with monkeypatch.context() as m:
        m.setattr(rasters, "commit_path", commit_then_die)
        with pytest.raises(_Killed):
            run(out, 1)
    assert not described.exists() or described.read_text() == want
    run(out, 1)
    assert described.read_text() == want and out.read_bytes() == ref.read_bytes()
