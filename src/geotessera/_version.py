"""The package version (layer 0: imported by any module without pulling in the package front door)."""

__version__ = "0.3.0.dev0"
