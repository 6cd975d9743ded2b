"""Built-in SageMaker algorithms that localcloud runs as host processes (contract §4)."""

from localcloud.algorithms import xgboost as _xgboost  # noqa: F401  (registers itself)
from localcloud.algorithms.registry import BuiltinAlgorithm, builtin, image_kind, register

__all__ = ["BuiltinAlgorithm", "builtin", "image_kind", "register"]
