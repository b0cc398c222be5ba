from typing import Any

from typing_extensions import Buffer

def encode(data: Buffer, /) -> bytes:
    """Encode a C-contiguous bytes-like object as one TIFF LZW segment (libtiff's bit stream)."""

def encode_quantized(quantized: Any, scales: Any, bands: Any, size: int, /) -> tuple[bytes, int]:
    """Dequantise int8 (h, w, n) x float32 (h, w) into a size x size tile and LZW-encode it."""
