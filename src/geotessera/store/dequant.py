"""Band-major int8 inner chunks -> pixel-major float32 values, turn and dequantisation in one step.

An inner chunk decodes band-major, ``(B, ih, iw)`` int8; outputs are pixel-major
``(rows, W, B)`` float32 ``float32(q) * scale``. numpy has no fast transpose of small
elements, and a pixel-major multiply by a per-pixel scale runs one short inner loop per
pixel. Both are done at once by BLAS: the chunk, still hot in cache from its decode, is
cast to float32 in band-major order (a contiguous cast), and each block of 8 pixels is
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
    """Writes ``float32(q) * s`` pixel-major from one band-major inner chunk.

    ``shape``: the chunk ``(B, ih, iw)`` int8. Scratch arrays (a band-major float32 copy of
    the chunk, the diagonal blocks) are reused: one instance per thread.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        nb, ih, iw = shape
        self.shape = shape
        nblk = iw // BLOCK
        self._f = np.empty((nb, ih, iw), dtype=np.float32)  # band-major float32 values
        f4 = self._f.itemsize
        # block j of row r: (BLOCK pixels, nb bands), read transposed by sgemm
        self._fv = as_strided(
            self._f, (ih, nblk, BLOCK, nb), (iw * f4, BLOCK * f4, f4, ih * iw * f4), writeable=False
        )
        self._d = np.zeros((ih, nblk, BLOCK, BLOCK), dtype=np.float32)  # zero off the diagonal
        self._diag = self._d.reshape(ih, nblk, BLOCK * BLOCK)[:, :, :: BLOCK + 1]

    def __call__(
        self,
        chunk: npt.NDArray[np.int8],
        lr0: int,
        lr1: int,
        c0: int,
        s: npt.NDArray[np.float32],
        dst: npt.NDArray[np.float32],
    ) -> None:
        """``dst[i, j, b] = float32(chunk[b, lr0 + i, c0 + j]) * s[i, j]``.

        ``chunk`` (B, ih, iw); rows [lr0, lr1); ``s`` (n, w) and ``dst`` (n, w, B) for chunk
        columns [c0, c0 + w), each row of ``dst`` C-contiguous (a slice of a larger array is fine).
        """
        nb = chunk.shape[0]
        if chunk.shape != self.shape:
            raise ValueError(f"chunk {chunk.shape} does not fit {self.shape}")
        n, w = s.shape
        c1 = c0 + w
        f = self._f[:, lr0:lr1]
        np.copyto(f, chunk[:, lr0:lr1], casting="unsafe")  # cast, band-major
        ft = f.transpose(1, 2, 0)  # (n, iw, B) pixel-major view
        j0, j1 = -(-c0 // BLOCK), c1 // BLOCK  # whole blocks inside [c0, c1)
        if j1 <= j0 or dst.strides[1:] != (nb * 4, 4):
            np.multiply(ft[:, c0:c1], s[:, :, None], out=dst)
            return
        a, b = j0 * BLOCK - c0, j1 * BLOCK - c0  # their columns in dst
        d = self._d[lr0:lr1, j0:j1]
        self._diag[lr0:lr1, j0:j1] = s[:, a:b].reshape(n, j1 - j0, BLOCK)
        out = dst[:, a:b].reshape(n, j1 - j0, BLOCK, nb)  # a view: rows of dst are C-contiguous
        np.matmul(d, self._fv[lr0:lr1, j0:j1], out=out)
        if a > 0:  # partial blocks at the edges
            np.multiply(ft[:, c0 : c0 + a], s[:, :a, None], out=dst[:, :a])
        if b < w:
            np.multiply(ft[:, c0 + b : c1], s[:, b:, None], out=dst[:, b:])
        if not s[:, a:b].all():  # exact zero scales: the sign of -0.0 (q < 0)
            zi, zj = np.nonzero(s[:, a:b] == 0)
            dst[zi, zj + a] = ft[zi, zj + a + c0] * s[zi, zj + a, None]
