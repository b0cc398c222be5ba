"""The LZW encoder's C core built on its own (``-DLZW_CORE_ONLY``), where a toolchain allows:

- with AddressSanitizer and UndefinedBehaviorSanitizer on this host: input and output buffers
  allocated to their exact sizes (the output to ``lzw_bound``), so a read past the input, a
  store past the bound (the 4-byte stores at the end) or a table index out of range aborts;
- for a big-endian host (s390x, run under qemu-user), where the stream must be the same bytes.

Both compare with the extension the package runs (itself checked against libtiff in
``test_lzw_encoder.py``). Skipped when the compiler (or the cross compiler and qemu) is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from geotessera.export import lzw_tiles

SOURCE = Path(lzw_tiles.__file__).with_name("_lzw.c")

HARNESS = r"""
#define LZW_CORE_ONLY
#include "%s"
#include <stdio.h>
/* stdin -> one LZW segment on stdout; every buffer exactly as large as the encoder may use.
 * Arguments: k (> 0: the input is fed k bytes at a time, each piece a copy of its own) and the
 * encoder's small table (default 4094, libtiff's stream). */
int main(int argc, char **argv) {
    size_t cap = 1 << 20, n = 0, got, k = argc > 1 ? (size_t)atol(argv[1]) : 0;
    unsigned small = argc > 2 ? (unsigned)atol(argv[2]) : CODE_LIMIT;
    uint8_t *buf = malloc(cap), *src, *dst;
    lzw_table t;
    lzw_state st;
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    src = malloc(n ? n : 1);
    memcpy(src, buf, n);
    free(buf);
    dst = malloc((size_t)lzw_bound((Py_ssize_t)n));
    if (!alloc_table(&t)) return 2;
    if (k == 0) {
        n = (size_t)lzw_encode(src, (Py_ssize_t)n, dst, &t, small);
    } else {
        lzw_begin(&st, dst, &t, small);
        for (size_t at = 0; at < n; at += k) {
            size_t len = n - at < k ? n - at : k;
            uint8_t *piece = malloc(len);
            memcpy(piece, src + at, len);
            lzw_feed(&st, piece, (Py_ssize_t)len);
            free(piece);
        }
        n = (size_t)lzw_finish(&st);
    }
    fwrite(dst, 1, n, stdout);
    free(src); free(dst); free_table(&t);
    return 0;
}
"""


def _inputs() -> list[bytes]:
    """Streams at the encoder's edges: zero runs at the start, the end, right after a Clear,
    longer than any known run many times over, noise (ratio Clears, 12-bit codes), one byte,
    NaN runs (a 4-byte word) entered at each phase, other words, words switching."""
    rng = np.random.default_rng(11)
    noise = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    nan = np.full(1, np.nan, dtype=np.float32).tobytes()
    return [
        nan * 500_000,
        b"".join(noise[: k * 7 % 13] + nan * (k * 97 % 3000 + 4) + b"\x00" * (k % 5) for k in range(400)),
        b"".join(bytes([0, k % 256, 0, 7]) * (k * 31 % 900 + 4) for k in range(300)),
        b"\x00",
        b"\x05",
        bytes(8),
        bytes(3_000_000) + b"\x01" + bytes(17),
        noise,
        noise[:30_001] + bytes(500_000) + noise[:5] + bytes(9),
        b"".join(bytes([k % 3]) * (k * 37 % 5000 + 1) + bytes(k % 11) for k in range(3000)),
        rng.integers(0, 2, 100_000, dtype=np.uint8).tobytes(),
        # one scale for many pixels, then one per pixel: large tables tried, kept, left again
        (rng.integers(-128, 128, (2048, 128)).astype(np.float32) * np.float32(0.05)).tobytes()
        + (
            rng.integers(-128, 128, (2048, 128)).astype(np.float32)
            * rng.uniform(0.01, 0.1, (2048, 1)).astype(np.float32)
        ).tobytes(),
    ]


def _build(cc: str, tmp_path: Path, *flags: str) -> Path:
    c = tmp_path / "harness.c"
    c.write_text(HARNESS % SOURCE.as_posix())
    exe = tmp_path / f"harness-{Path(cc).name}"
    run = subprocess.run([cc, "-O1", "-g", *flags, str(c), "-o", str(exe)], capture_output=True, text=True)
    if run.returncode != 0 and ("error:" not in run.stderr or "sanitize" in run.stderr):
        pytest.skip(f"{cc} cannot build the harness here: {run.stderr.strip()[-300:]}")
    assert run.returncode == 0, f"the harness does not compile against _lzw.c: {run.stderr[-1500:]}"
    return exe


def _check(cmd: list[str], small: int = 4094) -> None:
    assert lzw_tiles._encoder is not None
    for raw in _inputs():
        run = subprocess.run(cmd, input=raw, capture_output=True, timeout=300)
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
        assert run.stdout == lzw_tiles._encoder.encode(raw, small), f"{len(raw)}-byte input"


@pytest.mark.parametrize(
    "piece, small",
    [(0, 4094), (1, 4094), (5, 4094), (4093, 4094), (16384, 4094), (0, 510), (7, 510), (16384, 384)],
    ids=lambda v: str(v),
)
def test_the_core_is_memory_safe_under_sanitizers(tmp_path: Path, piece: int, small: int) -> None:
    """Fed whole or in pieces (as the tile encoder feeds rows of dequantised pixels), the stream
    is the same, and nothing is read outside each piece: a run or a ratio check that crosses a
    piece's end goes on in the next one. With small tables (Clears every few hundred codes) no
    store passes the output bound."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    exe = _build(cc, tmp_path, "-fsanitize=address,undefined", "-fno-sanitize-recover=all")
    _check([str(exe), str(piece), str(small)], small)


@pytest.mark.parametrize("small", [4094, 510])
def test_a_big_endian_host_writes_the_same_stream(tmp_path: Path, small: int) -> None:
    cc, qemu = shutil.which("s390x-linux-gnu-gcc"), shutil.which("qemu-s390x")
    if cc is None or qemu is None or not Path("/usr/s390x-linux-gnu").is_dir():
        pytest.skip("no s390x cross compiler and qemu-user (apt: gcc-s390x-linux-gnu qemu-user)")
    exe = _build(cc, tmp_path)
    _check([qemu, "-L", "/usr/s390x-linux-gnu", str(exe), "0", str(small)], small)
