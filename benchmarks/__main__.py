"""Entry point: ``python -m benchmarks [names...]``."""

from __future__ import annotations

import sys

from benchmarks.harness import main

sys.exit(main())
