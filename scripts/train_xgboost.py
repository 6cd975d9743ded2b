"""Train an XGBoost survival classifier on the Titanic passengers.

The same file runs on a laptop, in a SageMaker notebook, as a SageMaker script-mode entry point
(the XGBoost image runs it as ``python -m train_xgboost ...``) and in the course's local stand-in.
It is self-contained because SageMaker uploads only the entry point when no ``source_dir`` is given.

Usage (the lesson's command line, plus a few additions)::

    python train_xgboost.py --max_depth 5 --eta 0.1 --subsample 0.8 --colsample_bytree 0.8 \\
        --num_round 100 --train titanic_train.csv

``--train`` is a file name or a path. A relative name is looked up in ``$SM_CHANNEL_TRAIN`` when
that is set (inside a training job), else in the working directory. The model goes to
``--model_dir``, which defaults to ``$SM_MODEL_DIR`` or the working directory:
``xgboost-model.json`` (``Booster.save_model``) and ``preprocessing.json`` (fill values, features).

Metric lines are ``name=value`` pairs separated by spaces, for example::

    round=10 train:logloss=0.4562 validation:logloss=0.4921
    train:accuracy=0.8717 validation:accuracy=0.8182 validation:logloss=0.4203

The final summary line comes last, so a metric's last value is the one for the saved model.
A SageMaker ``metric_definitions`` list that reads them::

    [{"Name": "validation:accuracy", "Regex": r"validation:accuracy=([0-9.]+)"},
     {"Name": "validation:logloss", "Regex": r"validation:logloss=([0-9.]+)"},
     {"Name": "train:accuracy", "Regex": r"train:accuracy=([0-9.]+)"},
     {"Name": "train:logloss", "Regex": r"train:logloss=([0-9.]+)"}]

Notebooks import the helpers: ``preprocess``, ``load_model``, ``predict_proba``, ``accuracy``.
"""

# Postponed annotations keep the type hints harmless on the older Pythons of SageMaker images.
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import xgboost as xgb

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
SEX_CODES = {"male": 0, "female": 1}
EMBARKED_CODES = {"S": 0, "C": 1, "Q": 2}
LABEL = "Survived"
MODEL_FILE = "xgboost-model.json"
PREPROCESSING_FILE = "preprocessing.json"
PRINT_EVERY = 10


def preprocess(
    df: pd.DataFrame, stats: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, np.ndarray | None, dict[str, Any]]:
    """Turn raw passenger rows into numeric features, filling gaps with training statistics.

    Pass ``stats=None`` for training data (the fill values are computed from it and returned) and
    the returned ``stats`` for validation or test data, so they are filled with training values.
    The caller's frame is never modified. ``y`` is None when the frame has no ``Survived`` column.
    """
    missing = [c for c in FEATURES if c not in df.columns]
    if missing:
        raise ValueError(
            f"preprocess: missing column(s) {missing}; expected the Titanic CSV columns"
        )
    encoded = pd.DataFrame(index=df.index)
    for col in ("Pclass", "Age", "SibSp", "Parch", "Fare"):
        encoded[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    encoded["Sex"] = df["Sex"].map(SEX_CODES).astype(float)
    embarked = df["Embarked"]

    if stats is None:
        known = embarked[embarked.isin(list(EMBARKED_CODES))]
        mode = str(known.mode().iloc[0]) if len(known) else "S"
        fill = {col: float(encoded[col].median()) for col in encoded.columns}
        fill = {col: (0.0 if np.isnan(v) else v) for col, v in fill.items()}
        fill["Embarked"] = mode
        stats = {"features": list(FEATURES), "fill": fill}

    fill = stats["fill"]
    encoded["Embarked"] = embarked.map(EMBARKED_CODES).astype(float)
    encoded["Embarked"] = encoded["Embarked"].fillna(float(EMBARKED_CODES[fill["Embarked"]]))
    for col in ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare"):
        encoded[col] = encoded[col].fillna(fill[col])

    X = encoded[stats["features"]]
    y = None
    if LABEL in df.columns:
        y = pd.to_numeric(df[LABEL], errors="raise").to_numpy(dtype=np.int64)
    return X, y, stats


def stratified_split(
    X: pd.DataFrame, y: np.ndarray, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Hold out a validation part with the same survival rate, reproducibly."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=y)


def accuracy(y_true: Any, proba: Any, threshold: float = 0.5) -> float:
    """Share of correct 0/1 predictions; flattens both sides so shapes cannot broadcast."""
    truth = np.asarray(y_true).ravel()
    predicted = (np.asarray(proba, dtype=float).ravel() >= threshold).astype(truth.dtype)
    if truth.shape != predicted.shape:
        raise ValueError(f"accuracy: {truth.size} labels but {predicted.size} predictions")
    return float(np.mean(predicted == truth))


def _dmatrix(X: pd.DataFrame, y: np.ndarray | None = None) -> xgb.DMatrix:
    """Build a DMatrix from the feature frame, keeping the feature names in the model."""
    return xgb.DMatrix(X.to_numpy(dtype=np.float32), label=y, feature_names=list(X.columns))


def predict_proba(booster: xgb.Booster, stats: dict[str, Any], df: pd.DataFrame) -> np.ndarray:
    """Survival probability for raw passenger rows, preprocessed with the training statistics."""
    X, _, _ = preprocess(df, stats)
    return booster.predict(_dmatrix(X))


def save_model(booster: xgb.Booster, stats: dict[str, Any], model_dir: Path) -> Path:
    """Write the portable JSON model and the preprocessing statistics side by side."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILE
    booster.save_model(str(path))
    (model_dir / PREPROCESSING_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    return path


def load_model(model_dir: str | os.PathLike[str]) -> tuple[xgb.Booster, dict[str, Any]]:
    """Load a model saved by this script (a folder, or the path of its xgboost-model.json)."""
    path = Path(model_dir)
    if path.is_dir():
        path = path / MODEL_FILE
    booster = xgb.Booster()
    booster.load_model(str(path))
    stats = json.loads((path.parent / PREPROCESSING_FILE).read_text())
    return booster, stats


class _PrintMetrics(xgb.callback.TrainingCallback):
    """Print the evaluation log as metric lines every few rounds, not all of them."""

    def __init__(self, every: int, last: int) -> None:
        super().__init__()
        self.every = every
        self.last = last

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        done = epoch + 1
        if done % self.every == 0 or done == self.last:
            pairs = [
                f"{data}:{metric}={values[-1]:.4f}"
                for data, metrics in evals_log.items()
                for metric, values in metrics.items()
            ]
            print(f"round={done} " + " ".join(pairs), flush=True)
        return False


def train(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    params: dict[str, Any],
    num_round: int,
    early_stopping_rounds: int | None = None,
) -> xgb.Booster:
    """Boost trees while watching validation loss; keep only the best rounds when stopping early."""
    dtrain = _dmatrix(X_train, y_train)
    dval = _dmatrix(X_val, y_val)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=num_round,
        evals=[(dtrain, "train"), (dval, "validation")],
        early_stopping_rounds=early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_PrintMetrics(PRINT_EVERY, num_round)],
    )
    if early_stopping_rounds is not None:
        print(f"best_round={booster.best_iteration + 1}", flush=True)
        # Slicing drops the rounds after the best one, so the saved model is the best model.
        booster = booster[: booster.best_iteration + 1]
    return booster


def _logloss(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary cross-entropy, the same number xgboost reports as logloss."""
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


class _OneLineParser(argparse.ArgumentParser):
    """Report argument errors as one line, so a job's failure reason shows the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type, low: float, high: float, low_open: bool, high_open: bool, hint: str):
    """Argparse type that checks a number's range and says what is allowed."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; {hint}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high or value != value:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; {hint}")
        return value

    return parse


def _optional_positive_int(text: str) -> int | None:
    """Accept a positive integer, or an empty/none value (SageMaker sends None as '')."""
    if text.strip().lower() in ("", "none", "null"):
        return None
    return _number(int, 1, float("inf"), False, False, "use a whole number >= 1 or leave it out")(
        text
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: the lesson's arguments with the same meaning, plus a few additions."""
    p = _OneLineParser(prog="train_xgboost.py", description=__doc__.splitlines()[0])
    inf = float("inf")
    p.add_argument(
        "--max_depth",
        type=_number(int, 1, inf, False, False, "use a whole number >= 1, e.g. 5"),
        default=5,
        help="maximum depth of each tree",
    )
    p.add_argument(
        "--eta",
        type=_number(float, 0, 1, True, False, "use a learning rate in (0, 1], e.g. 0.1"),
        default=0.1,
        help="learning rate (shrinkage of each tree)",
    )
    p.add_argument(
        "--subsample",
        type=_number(float, 0, 1, True, False, "use a fraction in (0, 1], e.g. 0.8"),
        default=0.8,
        help="fraction of rows sampled for each tree",
    )
    p.add_argument(
        "--colsample_bytree",
        type=_number(float, 0, 1, True, False, "use a fraction in (0, 1], e.g. 0.8"),
        default=0.8,
        help="fraction of features sampled for each tree",
    )
    p.add_argument(
        "--num_round",
        type=_number(int, 1, inf, False, False, "use a whole number >= 1, e.g. 100"),
        default=100,
        help="number of boosting rounds (trees)",
    )
    p.add_argument(
        "--train",
        default="titanic_train.csv",
        help="training CSV; a relative name is looked up in $SM_CHANNEL_TRAIN, else the cwd",
    )
    p.add_argument(
        "--validation_fraction",
        type=_number(float, 0, 1, True, True, "use a fraction in (0, 1), e.g. 0.2"),
        default=0.2,
        help="share of the training rows held out (stratified) for validation",
    )
    p.add_argument(
        "--seed",
        type=_number(int, 0, 2**31 - 1, False, False, "use a whole number >= 0, e.g. 42"),
        default=42,
        help="seed for the split and for xgboost's sampling",
    )
    p.add_argument(
        "--early_stopping_rounds",
        type=_optional_positive_int,
        default=None,
        help="stop when validation logloss has not improved for this many rounds (default: off)",
    )
    p.add_argument(
        "--model_dir",
        default=os.environ.get("SM_MODEL_DIR", "."),
        help="where to write the model (default: $SM_MODEL_DIR, else the cwd)",
    )
    return p


def resolve_input(name: str, channel_env: str) -> Path:
    """A relative input name lives in the SageMaker channel folder when there is one."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    base = os.environ.get(channel_env)
    return Path(base) / path if base else Path.cwd() / path


def main(argv: list[str] | None = None) -> int:
    """Train, report metrics, save the model; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()

    train_path = resolve_input(args.train, "SM_CHANNEL_TRAIN")
    if not train_path.is_file():
        where = os.environ.get("SM_CHANNEL_TRAIN") or os.getcwd()
        parser.error(f"--train: no file {train_path} (relative names are looked up in {where})")
    try:
        raw = pd.read_csv(train_path)
        X, y, stats = preprocess(raw)
    except (ValueError, pd.errors.ParserError) as exc:
        parser.error(f"--train {train_path}: {str(exc).splitlines()[0]}")
    if y is None:
        parser.error(f"--train {train_path}: no '{LABEL}' column; pass the labelled training CSV")

    np.random.seed(args.seed)
    X_train, X_val, y_train, y_val = stratified_split(X, y, args.validation_fraction, args.seed)
    print(f"train_rows={len(X_train)} validation_rows={len(X_val)} features={X.shape[1]}")

    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "tree_method": "hist",
        "seed": args.seed,
    }
    fit_started = time.perf_counter()
    booster = train(
        X_train, y_train, X_val, y_val, params, args.num_round, args.early_stopping_rounds
    )
    fit_seconds = time.perf_counter() - fit_started

    train_proba = booster.predict(_dmatrix(X_train))
    val_proba = booster.predict(_dmatrix(X_val))
    model_path = save_model(booster, {**stats, "params": params}, Path(args.model_dir))
    print(f"training_seconds={fit_seconds:.2f} total_seconds={time.perf_counter() - started:.2f}")
    print(f"model_saved={model_path}")
    print(
        f"train:accuracy={accuracy(y_train, train_proba):.4f} "
        f"validation:accuracy={accuracy(y_val, val_proba):.4f} "
        f"validation:logloss={_logloss(y_val, val_proba):.4f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
