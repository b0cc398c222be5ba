from typing_extensions import Buffer

def encode(data: Buffer, /) -> bytes:
    """Encode a C-contiguous bytes-like object as one TIFF LZW segment (libtiff's bit stream)."""
