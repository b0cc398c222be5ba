"""Band-major int8 chunk rows -> pixel-major float32 values, turn and dequantisation in one step.

A row of inner chunks decodes band-major, ``(K, B, ih, iw)`` int8; outputs are pixel-major
``(rows, W, B)`` float32 ``float32(q) * scale``. numpy has no fast transpose of small
elements, and a pixel-major multiply by a per-pixel scale runs one short inner loop per
pixel. Both are done at once by BLAS: per image row, the values are cast to float32 in
band-major order (``(B, Wb)``, a contiguous cast), and each block of 8 pixels is
``diag(scale) (8 x 8) @ values (8 pixels x B bands)``, written by ``sgemm`` straight into
the output (it reads the transposed operand natively). The diagonal product is exact: every
output is ``scale * q`` rounded once, plus exact zeros (the off-diagonal terms; ``q`` is
finite). A NaN scale gives NaN. The one difference, the sign of a zero when the scale is
exactly 0, is repaired by recomputing those pixels directly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

BLOCK = 8  # pixels per diagonal block: 8 multiply-adds per output, few enough sgemm calls


class Dequantiser:
    """Writes ``float32(q) * s`` pixel-major from a band-major chunk row, ``rows`` image rows at a time.

    ``shape``: the chunk row buffer ``(K, B, ih, iw)`` int8. Scratch arrays are reused (one
    instance per thread).
    """

    def __init__(self, shape: tuple[int, int, int, int], rows: int) -> None:
        k, nb, _, iw = shape
        self.shape, self.rows = shape, rows
        wb = k * iw
        nblk = wb // BLOCK
        self._f = np.empty((rows, nb, wb), dtype=np.float32)  # band-major float32 values
        f4 = self._f.itemsize
        # block j of row r: (BLOCK pixels, nb bands), read transposed by sgemm
        self._fv = as_strided(
            self._f, (rows, nblk, BLOCK, nb), (nb * wb * f4, BLOCK * f4, f4, wb * f4), writeable=False
        )
        self._d = np.zeros((rows, nblk, BLOCK, BLOCK), dtype=np.float32)  # zero off the diagonal
        self._diag = self._d.reshape(rows, nblk, BLOCK * BLOCK)[:, :, :: BLOCK + 1]

    def __call__(
        self,
        buf: npt.NDArray[np.int8],
        lr0: int,
        lr1: int,
        c0: int,
        s: npt.NDArray[np.float32],
        dst: npt.NDArray[np.float32],
    ) -> None:
        """``dst[i, j, b] = float32(buf[kx, b, lr0 + i, x]) * s[i, j]`` for buffer column ``c0 + j``.

        ``buf`` (K, B, ih, iw) with buffer column ``k * iw + x``; rows [lr0, lr1) (at most
        ``rows``); ``s`` (n, w) and ``dst`` (n, w, B) for columns [c0, c0 + w), each row of
        ``dst`` C-contiguous (a row slice of a larger array is fine).
        """
        k, nb, _, iw = buf.shape
        if buf.shape != self.shape or lr1 - lr0 > self.rows:
            raise ValueError(f"chunk row {buf.shape} rows {lr0}:{lr1} do not fit {self.shape} x {self.rows}")
        n, w = s.shape
        c1 = c0 + w
        f = self._f[:n]
        f.reshape(n, nb, k, iw)[...] = buf[:, :, lr0:lr1, :].transpose(2, 1, 0, 3)  # cast, band-major
        ft = f.transpose(0, 2, 1)  # (n, Wb, B) pixel-major view
        j0, j1 = -(-c0 // BLOCK), c1 // BLOCK  # whole blocks inside [c0, c1)
        if j1 <= j0 or dst.strides[1:] != (nb * 4, 4):
            np.multiply(ft[:, c0:c1], s[:, :, None], out=dst)
            return
        a, b = j0 * BLOCK - c0, j1 * BLOCK - c0  # their columns in dst
        self._diag[:n, j0:j1] = s[:, a:b].reshape(n, j1 - j0, BLOCK)
        out = dst[:, a:b].reshape(n, j1 - j0, BLOCK, nb)  # a view: rows of dst are C-contiguous
        np.matmul(self._d[:n, j0:j1], self._fv[:n, j0:j1], out=out)
        if a > 0:  # partial blocks at the edges
            np.multiply(ft[:, c0 : c0 + a], s[:, :a, None], out=dst[:, :a])
        if b < w:
            np.multiply(ft[:, c0 + b : c1], s[:, b:, None], out=dst[:, b:])
        zi, zj = np.nonzero(s[:, a:b] == 0)  # exact zero scales: the sign of -0.0 (q < 0)
        if len(zi):
            dst[zi, zj + a] = ft[zi, zj + a + c0] * s[zi, zj + a, None]
