"""Settings resolved once at each entry point: explicit value > ``GEOTESSERA_*`` environment > default.

Nothing below the client and the CLI reads the environment.

| setting | environment variable | default |
|---|---|---|
| base_url | GEOTESSERA_BASE_URL | the public S3 bucket |
| cache_dir | GEOTESSERA_CACHE_DIR | $XDG_CACHE_HOME/geotessera (%LOCALAPPDATA% on Windows) |
| offline | GEOTESSERA_OFFLINE (1/true/yes) | False |
| workers | GEOTESSERA_WORKERS | 8 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import InvalidInputError
from .layouts import DEFAULT_BASE_URL

DEFAULT_WORKERS = 8
FRESHNESS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Settings:
    """Where data comes from and how it is fetched."""

    base_url: str = DEFAULT_BASE_URL
    """http(s) URL of the bucket (path-style) or a local directory holding a mirror."""
    cache_dir: Path = Path(platformdirs.user_cache_dir("geotessera", appauthor=False))
    """Where manifests are cached (never tiles)."""
    offline: bool = False
    """Never touch the network for manifests (use the cache only)."""
    workers: int = DEFAULT_WORKERS
    """Concurrent downloads."""
    freshness_timeout_s: float = FRESHNESS_TIMEOUT_S
    """Upper bound in seconds of the manifest freshness check at start-up."""

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        workers: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from explicit values, then ``GEOTESSERA_*`` variables, then defaults."""
        env = os.environ if environ is None else environ
        url = str(base_url) if base_url is not None else env.get("GEOTESSERA_BASE_URL") or DEFAULT_BASE_URL
        cache = cache_dir if cache_dir is not None else env.get("GEOTESSERA_CACHE_DIR")
        off = (
            offline
            if offline is not None
            else env.get("GEOTESSERA_OFFLINE", "").lower() in ("1", "true", "yes")
        )
        w: int | str | None = workers if workers is not None else env.get("GEOTESSERA_WORKERS")
        try:
            n = DEFAULT_WORKERS if w in (None, "") else int(w)
        except ValueError as exc:
            raise InvalidInputError(f"GEOTESSERA_WORKERS={w!r} is not a whole number") from exc
        if not 1 <= n <= 64:
            raise InvalidInputError(f"workers must be between 1 and 64, got {n}")
        if "://" not in url:
            url = str(Path(url).expanduser())  # GEOTESSERA_BASE_URL=~/mirror is not expanded by the shell
        _check_base_url(url)
        default_cache = Path(platformdirs.user_cache_dir("geotessera", appauthor=False))
        return cls(
            base_url=url.rstrip("/") if "://" in url else url,
            cache_dir=Path(cache).expanduser() if cache else default_cache,
            offline=off,
            workers=n,
        )


def _check_base_url(url: str) -> None:
    """An http(s) URL, a file:// URL or an existing directory; anything else is bad input."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("http", "https", "file"):
            raise InvalidInputError(
                f"base URL {url!r}: use an http(s) URL or a local directory, not {scheme}://"
            )
        return
    if not Path(url).expanduser().is_dir():
        raise InvalidInputError(f"base URL {url!r} is neither an http(s) URL nor an existing directory")
