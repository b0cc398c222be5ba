"""Settings resolved once at each entry point: explicit value > ``GEOTESSERA_*`` environment > default.

Nothing below the client, the Zarr reader and the CLI reads the environment.

| setting | environment variable | default |
|---|---|---|
| base_url | GEOTESSERA_BASE_URL | the public S3 bucket |
| cache_dir | GEOTESSERA_CACHE_DIR | $XDG_CACHE_HOME/geotessera (%LOCALAPPDATA% on Windows) |
| offline | GEOTESSERA_OFFLINE (1/true/yes) | False |
| workers | GEOTESSERA_WORKERS | 8 |
| retry | GEOTESSERA_RETRIES (retries after the first attempt) | :class:`RetryPolicy` () |

:class:`RetryPolicy` lives here, with the settings that carry it, so every layer that makes
requests (transfer, registry, Zarr store) takes the same policy from one place.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import platformdirs

from .errors import InvalidInputError
from .layouts import DEFAULT_BASE_URL

DEFAULT_WORKERS: Final = 8
FRESHNESS_TIMEOUT_S: Final = 2.0
"""Upper bound (seconds) of the manifest freshness check at start-up."""
MAX_WORKERS: Final = 64


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried.

    - ``max_retries``: retries after the first attempt (default 5; 0 disables retrying);
    - ``initial_backoff_s``: delay before the first retry (default 0.5 s), doubled per retry,
      with jitter (each delay is drawn from [d/2, d]);
    - ``max_backoff_s``: cap on one delay, also on a server's ``Retry-After`` (default 20 s);
    - ``total_timeout_s``: no retry starts later than this after the first attempt (default 300 s).

    Retried: HTTP 429, 500, 502, 503, 504, connection errors and resets, read timeouts,
    truncated bodies. Never retried: 403, 404 and checksum failures. A refused connection or an
    unknown host name, to a host that has not answered yet, is retried at most twice.
    """

    max_retries: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    total_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise InvalidInputError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")
        for name in ("initial_backoff_s", "max_backoff_s", "total_timeout_s"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise InvalidInputError(f"{name} must be >= 0 seconds, got {value!r}")

    def backoff_s(self, retry: int, retry_after_s: float | None = None) -> float:
        """Delay in seconds before retry number ``retry`` (1-based).

        A server's ``Retry-After`` (seconds) wins over the computed backoff; both are capped
        at ``max_backoff_s``.
        """
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.max_backoff_s))
        base = min(self.max_backoff_s, self.initial_backoff_s * (2.0 ** max(0, retry - 1)))
        return random.uniform(base / 2.0, base)


def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("geotessera")``: $XDG_CACHE_HOME/geotessera, %LOCALAPPDATA%..."""
    return Path(platformdirs.user_cache_dir("geotessera", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Where data comes from and how it is fetched."""

    base_url: str = DEFAULT_BASE_URL
    """http(s) URL of the bucket (path-style) or a local directory holding a mirror."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    """Where manifests are cached (never tiles), and the Zarr reader's chunk cache when chosen."""
    offline: bool = False
    """Never touch the network (manifests from the cache only; remote Zarr reads from the cache)."""
    workers: int = DEFAULT_WORKERS
    """Concurrent requests."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """How transient failures (429, 5xx, resets, timeouts) of every request are retried."""
    freshness_timeout_s: float = FRESHNESS_TIMEOUT_S
    """Upper bound in seconds of the manifest freshness check at start-up."""
    chosen: frozenset[str] = frozenset()
    """Names of the settings given explicitly or by the environment (the others are defaults),
    for callers whose default differs (e.g. the Zarr reader's workers on a local store)."""

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        workers: int | None = None,
        retries: int | RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from explicit values, then ``GEOTESSERA_*`` variables, then defaults.

        ``retries``: a whole number of retries (the other :class:`RetryPolicy` fields keep their
        defaults) or a full policy.
        """
        env = os.environ if environ is None else environ
        chosen: set[str] = set()

        def pick(name: str, value: object, var: str) -> object:
            if value is not None:
                chosen.add(name)
                return value
            text = env.get(var, "")
            if text != "":
                chosen.add(name)
                return text
            return None

        url = str(pick("base_url", base_url, "GEOTESSERA_BASE_URL") or DEFAULT_BASE_URL)
        cache = pick("cache_dir", cache_dir, "GEOTESSERA_CACHE_DIR")
        off = pick("offline", offline, "GEOTESSERA_OFFLINE")
        if isinstance(off, str):
            off = off.strip().lower() in ("1", "true", "yes")
        n = _whole(pick("workers", workers, "GEOTESSERA_WORKERS"), "GEOTESSERA_WORKERS", DEFAULT_WORKERS)
        if not 1 <= n <= MAX_WORKERS:
            raise InvalidInputError(f"workers must be between 1 and {MAX_WORKERS}, got {n}")
        r = pick("retry", retries, "GEOTESSERA_RETRIES")
        retry = r if isinstance(r, RetryPolicy) else RetryPolicy(_whole(r, "GEOTESSERA_RETRIES", 5))
        if "://" not in url:
            url = str(Path(url).expanduser())  # GEOTESSERA_BASE_URL=~/mirror is not expanded by the shell
        _check_base_url(url)
        return cls(
            base_url=url.rstrip("/") if "://" in url else url,
            cache_dir=Path(str(cache)).expanduser() if cache else default_cache_dir(),
            offline=bool(off),
            workers=n,
            retry=retry,
            chosen=frozenset(chosen),
        )


def _whole(value: object, var: str, default: int) -> int:
    """``value`` as an int (``default`` when None); text that is not a whole number is bad input."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidInputError(f"{var}: expected a whole number, got {value!r}")
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{var}={value!r} is not a whole number") from exc


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
