"""docs/reliability.md matches the tests: every test it names exists, every fault-matrix row is listed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
_REF = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?(?:\[[^\]`]*\])?`")


def test_every_test_the_page_names_exists() -> None:
    text = DOC.read_text()
    refs = _REF.findall(text)
    assert len(refs) >= 25
    for path, name in refs:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, flags=re.M), f"{path}::{name} is not a test"


MATRICES = [  # (module, dict of rows, the page's section listing them)
    ("test_fault_matrix.py", "ROWS", "Tile downloads"),
    ("test_fault_matrix_reads.py", "MANIFEST_ROWS", "Manifest loads"),
    ("test_fault_matrix_reads.py", "ZARR_ROWS", "Zarr reads"),
]


def _section(text: str, title: str) -> str:
    start = text.index(f"### {title}")
    end = text.find("\n#", start + 4)
    return text[start : end if end >= 0 else None]


def test_every_fault_matrix_row_is_on_the_page() -> None:
    text = DOC.read_text()
    for module, table, title in MATRICES:
        source = (ROOT / "tests" / "integration" / module).read_text()
        block = source[source.index(f"\n{table} = {{") :]
        block = block[: block.index("\n}\n")]
        rows = re.findall(r'^    "([^"]+)": Row\(', block, flags=re.M)
        assert len(rows) >= 10, (module, table)
        section = _section(text, title)
        for name in rows:
            assert f"| `{name}`" in section, f"{module} {table} row {name!r} is not under '{title}'"


def test_the_page_has_no_placeholders_and_the_readme_links_it() -> None:
    text = DOC.read_text()
    assert not re.search(r"\b[A-Z]+-(ROWS|CORRUPT|TEST|KILL|CONCURRENT|\d)\b", text)
    assert "docs/reliability.md" in (ROOT / "README.md").read_text()
