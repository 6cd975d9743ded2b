"""The built-in XGBoost algorithm's own metric definitions (contract §4.3).

A job that runs the built-in algorithm without MetricDefinitions of its own gets these, as on
SageMaker: DescribeTrainingJob lists them under AlgorithmSpecification.MetricDefinitions and
FinalMetricDataList holds the last value each one matched. They run over the log as CloudWatch
stores it, where the tab between the metrics of one round reads `#011`:
`[12]#011train-logloss:0.41234#011validation-logloss:0.45678`.
"""

from __future__ import annotations

# The eval_metric names the algorithm accepts; `error@t`, `ndcg@n`, `map@n`, ... carry a
# parameter in the name and have no fixed definition.
from localcloud.algorithms.xgboost.hyperparameters import EVAL_METRICS

DATA_SETS = ("train", "validation")  # the watchlist names, as the channels are called
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions() -> list[dict[str, str]]:
    """`{"Name": "<data>:<metric>", "Regex": ...}` for every data set and eval metric."""
    return [
        {"Name": f"{data}:{metric}", "Regex": rf".*\[[0-9]+\].*#011{data}-{metric}:{NUMBER}.*"}
        for metric in EVAL_METRICS
        for data in DATA_SETS
    ]
