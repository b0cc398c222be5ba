"""Settings resolution: explicit > GEOTESSERA_* environment > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from geotessera.config import DEFAULT_BASE_URL, RetryPolicy, Settings
from geotessera.errors import InvalidInputError


def test_precedence(tmp_path: Path) -> None:
    env = {"GEOTESSERA_BASE_URL": str(tmp_path), "GEOTESSERA_WORKERS": "3", "GEOTESSERA_OFFLINE": "yes"}
    s = Settings.resolve(environ=env)
    assert (s.base_url, s.workers, s.offline) == (str(tmp_path), 3, True)
    s = Settings.resolve(base_url="https://example.org/b/", workers=5, offline=False, environ=env)
    assert (s.base_url, s.workers, s.offline) == ("https://example.org/b", 5, False)
    assert Settings.resolve(environ={}).base_url == DEFAULT_BASE_URL


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mirror").mkdir()
    assert Settings.resolve(environ={"GEOTESSERA_BASE_URL": "~/mirror"}).base_url == str(tmp_path / "mirror")


@pytest.mark.parametrize(
    "env",
    [
        {"GEOTESSERA_WORKERS": "many"},
        {"GEOTESSERA_WORKERS": "0"},
        {"GEOTESSERA_BASE_URL": "ftp://x/y"},
        {"GEOTESSERA_RETRIES": "-1"},
        {"GEOTESSERA_RETRIES": "twice"},
    ],
)
def test_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError):
        Settings.resolve(environ=env)


def test_retries_and_what_was_chosen(tmp_path: Path) -> None:
    s = Settings.resolve(environ={"GEOTESSERA_RETRIES": "2", "GEOTESSERA_CACHE_DIR": str(tmp_path)})
    assert s.retry.max_retries == 2 and s.chosen == {"retry", "cache_dir"}
    policy = RetryPolicy(max_retries=1, initial_backoff_s=0.01)
    s = Settings.resolve(retries=policy, workers=3, environ={"GEOTESSERA_RETRIES": "9"})
    assert s.retry is policy and s.chosen == {"retry", "workers"}
    assert Settings.resolve(retries=0, environ={}).retry.max_retries == 0
    assert Settings.resolve(environ={}).chosen == frozenset()  # all defaults
