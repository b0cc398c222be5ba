"""Coverage layers from a manifest and their rasterisation into an image array."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.errors import InvalidInputError, NotCoveredError
from geotessera.grid import Cell
from geotessera.registry import Registry
from geotessera.visualization.cells import CoverageLayer, padded_extent, source_layers, year_layers
from geotessera.visualization.coverage_draw import check_style, paint


def registry(rows: list[tuple[int, int, int]]) -> Registry:
    cells = [Cell(ix, iy) for _, ix, iy in rows]
    return Registry.from_table(
        pa.table(
            {
                "year": pa.array([r[0] for r in rows], pa.int64()),
                "lon": pa.array([c.lon for c in cells], pa.float64()),
                "lat": pa.array([c.lat for c in cells], pa.float64()),
                "grid_size": pa.array([1] * len(rows), pa.int64()),
                "scales_size": pa.array([1] * len(rows), pa.int64()),
            }
        )
    )


def _keys(layer: CoverageLayer) -> set[tuple[int, int]]:
    return set(zip(layer.ix.tolist(), layer.iy.tolist(), strict=True))


def test_year_categories_follow_the_published_rule() -> None:
    rows = [
        (2023, 0, 520),
        (2024, 0, 520),
        (2025, 0, 520),  # all years
        (2025, 1, 520),  # latest only
        (2023, 2, 520),
        (2025, 2, 520),  # some years
        (2023, 3, 520),  # one early year: "some years" as well
    ]
    layers, counts = year_layers(registry(rows), [2023, 2024, 2025], (-1, 51, 1, 53))
    assert [_keys(layer) for layer in layers] == [{(0, 520)}, {(1, 520)}, {(2, 520), (3, 520)}]
    assert counts == {2023: 3, 2024: 1, 2025: 3}
    assert [layer.colour for layer in layers] == ["darkgreen", "darkblue", "darkorange"]
    one, _ = year_layers(registry(rows), [2023, 2024, 2025], (-1, 51, 1, 53), multi_year_colors=False)
    assert len(one) == 1 and _keys(one[0]) == {(0, 520), (1, 520), (2, 520), (3, 520)}
    assert one[0].colour == "red"


def test_layers_keep_to_the_extent_and_report_empty_areas() -> None:
    reg = registry([(2024, 0, 520), (2024, 100, 520)])
    layers, _ = year_layers(reg, [2024], (-1, 51, 1, 53))
    assert _keys(layers[0]) == {(0, 520)}
    with pytest.raises(NotCoveredError):
        year_layers(reg, [2024], (50, 10, 60, 20))


def test_each_source_is_a_layer() -> None:
    a, b = registry([(2024, 0, 520)]), registry([(2024, 0, 520), (2023, 1, 520)])
    layers, counts = source_layers([("v1/vultr", a), ("v1.1/cambridge", b)], None, (-180, -90, 180, 90))
    assert [_keys(layer) for layer in layers] == [{(0, 520)}, {(0, 520), (1, 520)}]
    assert counts == {"v1/vultr": {2024: 1}, "v1.1/cambridge": {2023: 1, 2024: 1}}
    assert layers[0].colour != layers[1].colour


CELL = st.tuples(st.integers(-1800, 1799), st.integers(-900, 899))


@settings(max_examples=40, deadline=None)
@given(cells=st.lists(CELL, min_size=1, max_size=300, unique=True), width=st.integers(100, 900))
def test_every_cell_gets_a_pixel_where_it_is(cells: list[tuple[int, int]], width: int) -> None:
    """A world map narrower than the grid still shows every cell, at its own place."""
    ix, iy = (np.array(v, np.int64) for v in zip(*cells, strict=True))
    layer = CoverageLayer("t", "red", ix, iy)
    h = width // 2
    img = paint([layer], (-180, -90, 180, 90), (h, width), tile_alpha=1.0)
    assert img.rgba.shape == (h, width, 4)
    rows, cols = np.nonzero(img.rgba[..., 3])
    drawn = set(zip(rows.tolist(), cols.tolist(), strict=True))
    for x, y in cells:
        col = min(width - 1, int(((x + 0.5) / 10 + 180) * width / 360))
        row = min(h - 1, int((90 - (y + 0.5) / 10) * h / 180))
        near = {(row + dr, col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
        assert near & drawn, (x, y)
    # nothing is drawn far from every cell
    for r, c in list(drawn)[:200]:
        lon, lat = -180 + (c + 0.5) * 360 / width, 90 - (r + 0.5) * 180 / h
        assert min(abs(lon - (x + 0.5) / 10) + abs(lat - (y + 0.5) / 10) for x, y in cells) < 4 * 360 / width


def test_zoomed_in_cells_fill_exactly_their_square() -> None:
    layer = CoverageLayer("t", "#0000ff", np.array([0, 1]), np.array([520, 520]))
    img = paint([layer], (0.0, 52.0, 0.4, 52.2), (200, 400), tile_alpha=0.5)
    alpha = img.rgba[..., 3]
    # cells 0.0-0.1 and 0.1-0.2 E, 52.0-52.1 N: the lower half of the left half
    assert (alpha[100:, :200] == 128).all() and (alpha[:100] == 0).all() and (alpha[:, 200:] == 0).all()
    assert tuple(img.rgba[150, 0, :3]) == (0, 0, 255)
    half = paint([layer], (0.0, 52.0, 0.4, 52.2), (200, 400), tile_size=0.5).rgba[..., 3]
    assert half.astype(bool).sum() == 2 * 50 * 50  # two 0.05-degree squares of 50 x 50 px


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ((-5, 0.5, 1.0, ["red"]), "width"),
        ((2000, 1.5, 1.0, ["red"]), "alpha"),
        ((2000, 0.5, 0.0, ["red"]), "tile size"),
        ((2000, 0.5, 1.0, ["reddish"]), "unknown colour"),
    ],
)
def test_bad_styles_are_refused(args: tuple, msg: str) -> None:
    with pytest.raises(InvalidInputError, match=msg):
        check_style(*args)


def test_padded_extent_grows_and_clips() -> None:
    assert padded_extent(None) == (-180.0, -90.0, 180.0, 90.0)
    w, s, e, n = padded_extent((0, 52, 0.4, 52.3))
    assert w < 0 and e > 0.4 and s < 52 and n > 52.3
    assert padded_extent((-180, -90, 180, 90)) == (-180.0, -90.0, 180.0, 90.0)
