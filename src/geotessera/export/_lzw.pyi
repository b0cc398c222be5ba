from typing import Any

from typing_extensions import Buffer

def encode(data: Buffer, small: int = 4094, /) -> bytes:
    """Encode a C-contiguous bytes-like object as one TIFF LZW segment.

    ``small`` (384-4094): the codes at which a table of short strings is cleared; 4094 writes
    libtiff's bit stream byte for byte.
    """

def encode_quantized(
    quantized: Any, scales: Any, bands: Any, size: int, small: int = 4094, /
) -> tuple[bytes, int]:
    """Dequantise int8 (h, w, n) x float32 (h, w) into a size x size tile and LZW-encode it."""
