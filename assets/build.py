"""Build geotessera's run-time assets: every file of ``src/geotessera/_data/`` comes from here.

``assets/package.json`` (with its lock file) names npm registry packages; ``assets/assets.json``
lists the files made from them: ``from`` copies a file of ``node_modules``, ``make`` runs the
generator of that name below. The result carries a stamp, ``_data/ASSETS.json``, holding a
digest of these inputs and the sha256 of every file made, so a build whose stamp matches is
skipped (an sdist carries the files and its stamp: building a wheel from it needs no npm).

Run by ``make assets`` and by ``setup.py`` before every wheel, sdist or editable build.
Standard library only (it runs inside the isolated build environment).

    python3 assets/build.py            build what is missing or stale
    python3 assets/build.py --check    exit 1 unless the assets are current
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path("src") / "geotessera" / "_data"
STAMP = "ASSETS.json"
INPUTS = ("package.json", "package-lock.json", "assets.json", "build.py")


class AssetError(RuntimeError):
    """The assets cannot be built (no npm, a missing package file, a failed install)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec(assets: Path = HERE) -> list[dict[str, str]]:
    """The entries of ``assets.json``: ``{"to": name, "from": node_modules path | "make": generator}``."""
    files: list[dict[str, str]] = json.loads((assets / "assets.json").read_text(encoding="utf-8"))["files"]
    return files


def inputs_digest(assets: Path = HERE) -> str:
    """sha256 over the files that decide the assets (package lists, assets.json, this script)."""
    h = hashlib.sha256()
    for name in INPUTS:
        h.update(name.encode() + b"\0" + (assets / name).read_bytes() + b"\0")
    return h.hexdigest()


def is_current(root: Path) -> bool:
    """True when ``root``'s ``_data`` holds every listed file, unchanged, built from the current inputs."""
    data = root / DATA
    try:
        stamp = json.loads((data / STAMP).read_text(encoding="utf-8"))
        if stamp.get("inputs") != inputs_digest(root / "assets"):
            return False
        files = stamp["files"]
        wanted = {e["to"] for e in spec(root / "assets")}
        if set(files) != wanted:
            return False
        return all(_sha256((data / name).read_bytes()) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _installed(assets: Path) -> bool:
    """True when node_modules holds every package of the lock file at its locked version."""
    lock = json.loads((assets / "package-lock.json").read_text(encoding="utf-8"))
    for path, entry in lock.get("packages", {}).items():
        if not path:
            continue
        try:
            have = json.loads((assets / path / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if have.get("version") != entry.get("version"):
            return False
    return True


def npm_install(assets: Path) -> None:
    """``npm ci`` in ``assets`` unless node_modules already matches the lock file."""
    if _installed(assets):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            "geotessera's run-time assets (country shapes and ISO codes in src/geotessera/_data/) are "
            "built from the npm registry packages of assets/package.json, and `npm` was not found. "
            "Install Node.js with npm and build again, or build from a geotessera sdist, which carries them."
        )
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--silent"]
    done = subprocess.run(cmd, cwd=assets, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssetError(
            f"`npm ci` in {assets} failed (exit {done.returncode}): "
            + " ".join((done.stderr or done.stdout).split())[-600:]
        )


# --- generators: node_modules -> bytes ------------------------------------------------------------
def country_codes(modules: Path) -> bytes:
    """ISO 3166-1 codes and English names with common aliases, from i18n-iso-countries.

    ``{"source": ..., "countries": [[alpha2, alpha3, numeric, [names...]], ...]}``: about
    250 rows, the first name being the usual English one (e.g. ``["GB", "GBR", "826",
    ["United Kingdom", "UK", "Great Britain"]]``).
    """
    pkg = modules / "i18n-iso-countries"
    codes = json.loads((pkg / "codes.json").read_text(encoding="utf-8"))
    names = json.loads((pkg / "langs" / "en.json").read_text(encoding="utf-8"))["countries"]
    version = json.loads((pkg / "package.json").read_text(encoding="utf-8"))["version"]
    rows = []
    for alpha2, alpha3, numeric, *_ in codes:
        entry = names.get(alpha2, [])
        rows.append([alpha2, alpha3, numeric, [entry] if isinstance(entry, str) else list(entry)])
    doc = {"source": f"npm i18n-iso-countries {version} (MIT)", "countries": rows}
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


GENERATORS: dict[str, Callable[[Path], bytes]] = {"country_codes": country_codes}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # names may hold a directory (leaflet/images/...)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build(root: Path) -> list[str]:
    """Make every listed file under ``root/src/geotessera/_data`` and write the stamp; returns the names."""
    assets = root / "assets"
    npm_install(assets)
    data = root / DATA
    data.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    modules = assets / "node_modules"
    for entry in spec(assets):
        name = entry["to"]
        if "from" in entry:
            src = modules / entry["from"]
            if not src.is_file():
                raise AssetError(f"{src} is missing: is its package listed in assets/package.json?")
            content = src.read_bytes()
        elif entry.get("make") in GENERATORS:
            content = GENERATORS[entry["make"]](modules)
        else:
            raise AssetError(f"assets/assets.json: entry {entry!r} has neither 'from' nor a known 'make'")
        _write(data / name, content)
        made[name] = _sha256(content)
    stamp = {"inputs": inputs_digest(assets), "files": made}
    _write(data / STAMP, (json.dumps(stamp, indent=2, sort_keys=True) + "\n").encode())
    return sorted(made)


def ensure(root: Path) -> bool:
    """Build the assets of the source tree ``root`` unless current; True when something was built."""
    if is_current(root):
        return False
    build(root)
    return True


def main(argv: list[str]) -> int:
    root = HERE.parent
    if "--check" in argv:
        ok = is_current(root)
        print(f"assets {'current' if ok else 'missing or stale'} in {root / DATA}")
        return 0 if ok else 1
    try:
        built = ensure(root)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"assets {'built' if built else 'already current'} in {root / DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
