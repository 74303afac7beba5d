"""medscribe: clinical documentation pipeline (shared package shipped as a Lambda layer)."""

__version__ = "0.1.0"
