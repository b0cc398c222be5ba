"""A reference TIFF LZW decoder, written from the TIFF 6.0 specification (section 13) and
libtiff's reading of it: codes MSB first, 9 to 12 bits, Clear (256) anywhere, EOI (257), the
code width growing one code early ("early change"). Slow, for test streams of a few MB."""

from __future__ import annotations

CLEAR, EOI, FIRST = 256, 257, 258


def lzw_decode(stream: bytes) -> bytes:
    """The bytes ``stream`` encodes. Raises ValueError on a code the table cannot hold yet or
    a stream without EOI."""
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    out = bytearray()
    acc = nacc = pos = 0
    width = 9
    prev: bytes | None = None
    while True:
        while nacc < width:
            if pos == len(stream):
                raise ValueError("stream ends without EOI")
            acc = (acc << 8) | stream[pos]
            pos += 1
            nacc += 8
        nacc -= width
        code = (acc >> nacc) & ((1 << width) - 1)
        acc &= (1 << nacc) - 1
        if code == EOI:
            return bytes(out)
        if code == CLEAR:
            del table[FIRST:]
            width, prev = 9, None
            continue
        if prev is None:
            if code >= 256:
                raise ValueError(f"code {code} right after a Clear")
            entry = table[code]
        elif code < len(table):
            entry = table[code]
            table.append(prev + entry[:1])
        elif code == len(table):
            entry = prev + prev[:1]
            table.append(entry)
        else:
            raise ValueError(f"code {code} beyond the table ({len(table)} entries)")
        if len(table) > 4096:
            raise ValueError("table past 4096 entries without a Clear")
        out += entry
        prev = entry
        if len(table) + 1 >= 1 << width and width < 12:
            width += 1
