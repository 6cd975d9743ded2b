"""Hyperparameters of the built-in XGBoost, parsed from the raw strings and validated (§4.2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.algorithms.xgboost.errors import UserError

OBJECTIVES = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "reg:linear",
    "reg:logistic",
    "reg:gamma",
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "reg:tweedie",
    "survival:cox",
    "survival:aft",
)
EVAL_METRICS = (
    "rmse",
    "rmsle",
    "mae",
    "mape",
    "mphe",
    "logloss",
    "error",
    "merror",
    "mlogloss",
    "auc",
    "aucpr",
    "ndcg",
    "map",
    "poisson-nloglik",
    "gamma-nloglik",
    "cox-nloglik",
    "gamma-deviance",
    "tweedie-nloglik",
    "aft-nloglik",
    "interval-regression-accuracy",
)
CLASSIFICATION_ONLY_METRICS = ("auc", "aucpr")
# Keys the algorithm consumes itself instead of passing them to xgboost.train's params.
NON_PARAMS = (
    "num_round",
    "early_stopping_rounds",
    "csv_weights",
    "save_model_on_termination",
    "_kfold",
    "_num_cv_round",
    "_tuning_objective_metric",
    "use_dask_gpu_training",
)
ALIASES = {
    "eta": "learning_rate",
    "gamma": "min_split_loss",
    "lambda": "reg_lambda",
    "alpha": "reg_alpha",
}


@dataclass(frozen=True)
class Interval:
    """A numeric range printed the way the container prints it, e.g. [0, 1] or (0, +inf)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )

    def __str__(self) -> str:
        left = "(-inf" if self.low is None else ("(" if self.low_open else "[") + f"{self.low}"
        right = "+inf)" if self.high is None else f"{self.high}" + (")" if self.high_open else "]")
        return f"{left}, {right}"


def _int(text: str) -> int:
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isnan(value):
        raise ValueError(text)
    return value


def _text(text: str) -> str:
    return text


def _csv_list(text: str) -> list[str]:
    return text.split(",")


@dataclass(frozen=True)
class Spec:
    """How one hyperparameter is parsed and which values it accepts."""

    parse: Callable[[str], Any]
    allowed: Interval | tuple[Any, ...] | None = None


NONNEG = Interval(0)
UNIT = Interval(0, 1)
UNIT_OPEN_LOW = Interval(0, 1, low_open=True)
SPECS: dict[str, Spec] = {
    "num_round": Spec(_int, Interval(1)),
    "early_stopping_rounds": Spec(_int, Interval(1)),
    "booster": Spec(_text, ("gbtree", "gblinear", "dart")),
    "verbosity": Spec(_int, Interval(0, 3)),
    "nthread": Spec(_int, Interval(1)),
    "eta": Spec(_float, UNIT),
    "learning_rate": Spec(_float, UNIT),
    "gamma": Spec(_float, NONNEG),
    "min_split_loss": Spec(_float, NONNEG),
    "max_depth": Spec(_int, NONNEG),
    "min_child_weight": Spec(_float, NONNEG),
    "max_delta_step": Spec(_float, NONNEG),
    "subsample": Spec(_float, UNIT_OPEN_LOW),
    "sampling_method": Spec(_text, ("uniform", "gradient_based")),
    "colsample_bytree": Spec(_float, UNIT_OPEN_LOW),
    "colsample_bylevel": Spec(_float, UNIT_OPEN_LOW),
    "colsample_bynode": Spec(_float, UNIT_OPEN_LOW),
    "lambda": Spec(_float, NONNEG),
    "reg_lambda": Spec(_float, NONNEG),
    "alpha": Spec(_float, NONNEG),
    "reg_alpha": Spec(_float, NONNEG),
    "tree_method": Spec(_text, ("auto", "exact", "approx", "hist", "gpu_hist")),
    "sketch_eps": Spec(_float, Interval(0, 1, low_open=True, high_open=True)),
    "scale_pos_weight": Spec(_float, Interval(0, low_open=True)),
    "updater": Spec(
        _csv_list,
        (
            "grow_colmaker",
            "distcol",
            "grow_histmaker",
            "grow_local_histmaker",
            "grow_skmaker",
            "grow_quantile_histmaker",
            "sync",
            "refresh",
            "prune",
            "shotgun",
            "coord_descent",
        ),
    ),
    "dsplit": Spec(_text, ("row", "col")),
    "refresh_leaf": Spec(_int, (0, 1)),
    "process_type": Spec(_text, ("default", "update")),
    "grow_policy": Spec(_text, ("depthwise", "lossguide")),
    "max_leaves": Spec(_int, NONNEG),
    "max_bin": Spec(_int, Interval(2)),
    "num_parallel_tree": Spec(_int, Interval(1)),
    "predictor": Spec(_text, ("auto", "cpu_predictor", "gpu_predictor")),
    "sample_type": Spec(_text, ("uniform", "weighted")),
    "normalize_type": Spec(_text, ("tree", "forest")),
    "rate_drop": Spec(_float, UNIT),
    "one_drop": Spec(_int, (0, 1)),
    "skip_drop": Spec(_float, UNIT),
    "lambda_bias": Spec(_float, UNIT),
    "tweedie_variance_power": Spec(_float, Interval(1, 2, low_open=True, high_open=True)),
    "huber_slope": Spec(_float, NONNEG),
    "quantile_alpha": Spec(_text),
    "objective": Spec(_text, OBJECTIVES),
    "num_class": Spec(_int, Interval(2)),
    "base_score": Spec(_float),
    "eval_metric": Spec(_csv_list, EVAL_METRICS),
    "seed": Spec(_int),
    "csv_weights": Spec(_int, (0, 1)),
    "max_cat_to_onehot": Spec(_int, Interval(1)),
    "feature_selector": Spec(_text, ("cyclic", "shuffle", "random", "greedy", "thrifty")),
    "top_k": Spec(_int, NONNEG),
    "interaction_constraints": Spec(_text),
    "monotone_constraints": Spec(_text),
    "single_precision_histogram": Spec(_text, ("true", "false")),
    "deterministic_histogram": Spec(_text, ("true", "false")),
    "save_model_on_termination": Spec(_text, ("true", "false")),
    "aft_loss_distribution": Spec(_text, ("normal", "logistic", "extreme")),
    "aft_loss_distribution_scale": Spec(_float, Interval(0, low_open=True)),
    "multi_strategy": Spec(_text, ("one_output_per_tree", "multi_output_tree")),
    "_kfold": Spec(_int, Interval(2)),
    "_num_cv_round": Spec(_int, Interval(1)),
    "_tuning_objective_metric": Spec(_text),
    "use_dask_gpu_training": Spec(_text, ("true", "false")),
}


@dataclass
class TrainConfig:
    """What training needs, split out of the validated hyperparameters."""

    params: dict[str, Any]
    num_round: int
    early_stopping_rounds: int | None
    csv_weights: bool


def _check_allowed(name: str, value: Any, allowed: Interval | tuple[Any, ...] | None) -> None:
    if allowed is None:
        return
    if isinstance(value, list):
        if any(v not in allowed for v in value):
            raise UserError(f"Hyperparameter {name}: value {value} not in range {list(allowed)}")
    elif value not in allowed:
        shown = allowed if isinstance(allowed, Interval) else list(allowed)
        raise UserError(f"Hyperparameter {name}: {value} is not in {shown}")


def validate(raw: dict[str, str]) -> TrainConfig:
    """Parse and check every hyperparameter; the messages are the container's (contract §4.2)."""
    if "num_round" not in raw:
        raise UserError("Missing required hyperparameter: num_round")
    parsed: dict[str, Any] = {}
    for name, text in raw.items():
        spec = SPECS.get(name)
        if spec is None:
            raise UserError(f"Extraneous hyperparameter found: {name}")
        try:
            parsed[name] = spec.parse(str(text))
        except ValueError as exc:
            raise UserError(f"Hyperparameter {name}: could not parse value", caused_by=exc) from exc
    for name, value in parsed.items():
        _check_allowed(name, value, SPECS[name].allowed)
    objective = parsed.get("objective", "reg:squarederror")
    if objective.startswith("multi:") and "num_class" not in parsed:
        raise UserError("Require input for parameter 'num_class' for multi-classification")
    if "num_class" in parsed and not objective.startswith("multi:"):
        raise UserError(
            "Do not need to setup parameter 'num_class' for learning task other "
            "than multi-classification."
        )
    for metric in parsed.get("eval_metric", []):
        if metric in CLASSIFICATION_ONLY_METRICS and objective.startswith("reg:"):
            raise UserError(
                f"Metric '{metric}' can only be applied for classification and ranking problems."
            )
    params = {ALIASES.get(k, k): v for k, v in parsed.items() if k not in NON_PARAMS}
    if "eval_metric" in params and len(params["eval_metric"]) == 1:
        params["eval_metric"] = params["eval_metric"][0]
    if params.get("tree_method") == "gpu_hist":
        params["tree_method"] = "hist"  # localcloud trains on the CPU
    return TrainConfig(
        params=params,
        num_round=parsed["num_round"],
        early_stopping_rounds=parsed.get("early_stopping_rounds"),
        csv_weights=parsed.get("csv_weights", 0) == 1,
    )
