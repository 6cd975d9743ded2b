"""The built-in XGBoost algorithm: hyperparameters, data channels and distributed training."""

from localcloud.algorithms.registry import BuiltinAlgorithm, register
from localcloud.algorithms.xgboost.errors import UserError
from localcloud.algorithms.xgboost.metrics import metric_definitions

__all__ = ["UserError"]

register(
    BuiltinAlgorithm(
        image_kind="xgboost",
        module="localcloud.algorithms.xgboost_builtin",
        metric_definitions=metric_definitions,
        ports=2,  # the collective's tracker and its data round (xgboost/distributed.py)
        ports_env="LOCALCLOUD_XGB_PORTS",
    )
)
