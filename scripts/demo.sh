#!/usr/bin/env bash
# The main job on the sample store, end to end through the real HTTP/S3 path on loopback:
#   build the deterministic sample store (real tile sizes by default), serve it with moto on
#   127.0.0.1, download a region as GeoTIFFs and as NPY, see it (PCA mosaic, web map, coverage),
#   train a land-cover model on labelled points and map it, and print where the results are.
# Knobs: DEMO_OUT (default demo-output), DEMO_PIXEL_SIZE (default 10 m: real sizes, ~7 GB;
# 100 gives a 70 MB store in seconds).
set -euo pipefail

OUT=${DEMO_OUT:-demo-output}
PIX=${DEMO_PIXEL_SIZE:-10}
STORE="$OUT/store"
CACHE="$OUT/manifest-cache"
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*"; }

built() {  # is a complete store with this pixel size already there? (building is deterministic)
  python -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(not (m.get("complete") and float(m["options"]["pixel_size_m"]) == float(sys.argv[2])))' \
    "$STORE/sample_store.json" "$PIX" 2>/dev/null
}
if built; then
  step "sample store already built in $STORE (pixel size $PIX m)"
else
  step "building the sample store in $STORE (pixel size $PIX m)"
  geotessera sample build "$STORE" --pixel-size "$PIX"
fi

step "building a geoemb Zarr store (v1) from its tiles, served beside them (resumable: a rerun skips it)"
geotessera zarr build "$STORE" "$STORE/zarr/v1.zarr"

step "serving it on 127.0.0.1 (moto, CRC64NVMe checksums, anonymous public read)"
READY="$OUT/endpoint-url"
rm -f "$READY"
geotessera sample serve "$STORE" --port 0 --ready-file "$READY" >"$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -s "$READY" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/serve.log"; echo "the server failed to start" >&2; exit 1; }
  sleep 0.5
done
[ -s "$READY" ] || { echo "the server did not become ready" >&2; exit 1; }
URL=$(cat "$READY")
export GEOTESSERA_BASE_URL="$URL"
echo "endpoint: $URL"

step "what the endpoint holds (v1)"
geotessera info --cache-dir "$CACHE"

step "download Cambridge (0.0-0.4 E, 52.0-52.3 N), 2024, as GeoTIFF (verified, concurrent)"
geotessera download --bbox "0.0,52.0,0.4,52.3" --year 2024 -o "$OUT/cambridge_tiffs" --cache-dir "$CACHE"

step "the same region from v1.1/cambridge as NPY"
geotessera download --bbox "0.0,52.0,0.4,52.3" --year 2024 --format npy --dataset-version v1.1 \
  --dataset-variant cambridge -o "$OUT/cambridge_npy" --cache-dir "$CACHE"

step "rerun: everything is already complete, nothing is fetched again"
geotessera download --bbox "0.0,52.0,0.4,52.3" --year 2024 -o "$OUT/cambridge_tiffs" --cache-dir "$CACHE"

step "cloud-native: embeddings at points straight from the served Zarr store (no tile download)"
python - "$URL" <<'PY'
import sys

import numpy as np

from geotessera.store import GeoTesseraZarr

points = [(0.151, 52.051), (0.25, 52.12), (5.96, 45.05), (6.04, 45.05), (-58.45, -34.55), (1.79, 52.45)]
with GeoTesseraZarr(f"{sys.argv[1]}/zarr/v1.zarr") as store:
    values, status = store.sample_points(points, year=2024, return_status=True)
    for (lon, lat), row, st in zip(points, values, status):
        print(f"  ({lon:7.3f}, {lat:7.3f}) {st:8s} first bands {np.round(row[:3], 3)}")
PY

step "see it: one PCA colours the whole download (an RGBA GeoTIFF and a PNG quick-look)"
geotessera visualize "$OUT/cambridge_tiffs" "$OUT/cambridge_pca.tif"

step "web tiles and a Leaflet page for it (open $OUT/cambridge_web/index.html, or add --serve)"
geotessera webmap "$OUT/cambridge_pca.tif" -o "$OUT/cambridge_web" --min-zoom 10 --max-zoom 13

step "where Tessera has tiles around Cambridge (PNG, with coverage.json and coverage.html beside it)"
geotessera coverage --bbox "-0.5,51.7,0.9,52.6" -o "$OUT/coverage.png" --cache-dir "$CACHE"

step "analysis: labelled points -> embeddings table -> land-cover model (spatial CV) -> map"
python - "$STORE" "$OUT/labels.csv" <<'PY'
import csv
import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer

# Labels as a user would bring them: random land pixels of the sample store's ground truth.
store, out = Path(sys.argv[1]), Path(sys.argv[2])
names = {c["code"]: c["name"] for c in json.loads((store / "ground_truth/classes.json").read_text())["classes"]}
rng = np.random.default_rng(0)
rows = []
for f in sorted((store / "ground_truth/2024").glob("grid_0.*_52.*_classes.tif")):
    with rasterio.open(f) as ds:
        codes = ds.read(1)
        to_wgs84 = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True)
        margin = codes.shape[0] // 10  # keep clear of the overlap with neighbouring tiles
        r = rng.integers(margin, codes.shape[0] - margin, 80)
        c = rng.integers(margin, codes.shape[1] - margin, 80)
        x, y = ds.transform * (c + 0.5, r + 0.5)
        for lon, lat, code in zip(*to_wgs84.transform(x, y), codes[r, c]):
            if code:  # land only
                rows.append((round(float(lon), 6), round(float(lat), 6), names[int(code)]))
with out.open("w", newline="") as fh:
    csv.writer(fh).writerows([("lon", "lat", "landcover"), *rows])
print(f"  {len(rows)} labelled points -> {out}")
PY
geotessera extract "$OUT/labels.csv" -o "$OUT/labels_2024.parquet" --zarr "$URL/zarr/v1.zarr"
geotessera classify "$OUT/labels_2024.parquet" --label landcover -o "$OUT/landcover_model" \
  --predict "0.1,52.1,0.3,52.2" --map "$OUT/landcover_2024.tif" --zarr "$URL/zarr/v1.zarr"

step "what was written"
geotessera info --tiles "$OUT/cambridge_tiffs" | tail -1

printf '\nResults:\n'
printf '  sample store:        %s\n' "$(cd "$STORE" && pwd)"
printf '  ground truth:        %s\n' "$(cd "$STORE/ground_truth" && pwd)"
printf '  GeoTIFFs (v1, 2024): %s\n' "$(cd "$OUT/cambridge_tiffs" && pwd)"
printf '  NPY (v1.1, 2024):    %s\n' "$(cd "$OUT/cambridge_npy" && pwd)"
printf '  PCA mosaic:          %s\n' "$(cd "$OUT" && pwd)/cambridge_pca.tif"
printf '  web map:             %s\n' "$(cd "$OUT/cambridge_web" && pwd)/index.html"
printf '  coverage map:        %s\n' "$(cd "$OUT" && pwd)/coverage.png"
printf '  land-cover map:      %s\n' "$(cd "$OUT" && pwd)/landcover_2024.tif"

# The endpoint above stops with this script: say how to bring it back, and what to try next.
STORE_ABS=$(cd "$STORE" && pwd)
cat <<NEXT

The endpoint $URL stops with the demo. To serve the sample store again (until Ctrl-C):
  geotessera sample serve "$STORE_ABS" --port 9000
Then, in another shell (it covers Cambridge, UK: 0.0 to 0.4 E, 52.0 to 52.3 N):
  export GEOTESSERA_BASE_URL=http://127.0.0.1:9000/tessera-embeddings
  geotessera info
  geotessera download --bbox "0.0,52.0,0.4,52.3" --year 2023 -o cambridge_2023
  geotessera info --tiles cambridge_2023
  geotessera download --tile "0.15,52.05" --years 2023,2024 --format npy -o one_tile
  geotessera download --country UK --dry-run -o uk
  python -c 'from geotessera import GeoTessera; print(GeoTessera().fetch_embedding(lon=0.15, lat=52.05, year=2024)[0].shape)'
The Python examples of README.md run unchanged against it too.
NEXT
