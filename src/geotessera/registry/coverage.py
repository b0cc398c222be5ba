"""The one message for a region without coverage, shared by the library's warning and the CLI's error."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

from ..errors import CoverageWarning

log = logging.getLogger(__name__)


def no_coverage_message(
    n_tiles: int, description: str, years: Sequence[int], dataset: object, available: Sequence[int]
) -> str:
    """Why nothing was found, e.g. ``none of the 12 tiles of bbox (...) is covered for 2024 (...)``.

    ``n_tiles`` is the number of 0.1-degree cells of the region, ``description`` names it
    (``bbox (...)``, ``tile grid_X_Y (...)``, ``country ...``), ``years`` are those asked for
    and ``available`` those the dataset has anywhere.
    """
    asked = str(years[0]) if len(years) == 1 else f"any of {', '.join(map(str, years))}"
    if n_tiles == 1:
        subject = description if description.startswith("tile ") else f"the only tile of {description}"
        said = f"{subject} is not covered for {asked}"
    else:
        said = f"none of the {n_tiles} tiles of {description} is covered for {asked}"
    if available:
        return f"{said} (dataset {dataset} has data for {', '.join(map(str, available))}, elsewhere)"
    return f"{said} (dataset {dataset} has no tiles at all)"


def warn_no_coverage(message: str, *, stacklevel: int = 3) -> None:
    """Log ``message`` and raise it as a :class:`CoverageWarning` (callers see where they asked)."""
    log.warning(message)
    warnings.warn(message, CoverageWarning, stacklevel=stacklevel)
