"""diffrisk: just-in-time defect prediction for pull requests and deployments."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
