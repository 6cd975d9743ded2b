"""The built-in SageMaker XGBoost algorithm (algorithm mode) as one host process (contract §4).

Run by the cluster as `python -m localcloud.algorithms.xgboost_builtin` with the SM_* variables of
the host; reads the config files, trains with the local xgboost, writes `<model>/xgboost-model`
(master only) or, on failure, `<output>/failure` in the container's `framework error:` form.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from localcloud.algorithms.xgboost import UserError, data, distributed
from localcloud.algorithms.xgboost.hyperparameters import TrainConfig, validate

MODEL_NAME = "xgboost-model"
log = logging.getLogger("localcloud.xgboost")


def _dir(var: str, default: str) -> Path:
    return Path(os.environ.get(var, default))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _matrix(arrays: dict[str, Any]) -> Any:
    import numpy as np
    import xgboost as xgb

    return xgb.DMatrix(
        arrays["data"], label=arrays["label"], weight=arrays["weight"], missing=np.nan
    )


def _train(
    cfg: TrainConfig, train: dict[str, Any], val: dict[str, Any] | None, model_dir: Path | None
) -> None:
    """Train on this host's data (inside a communicator when distributed); save on the master."""
    import xgboost as xgb

    dtrain = _matrix(train)
    log.info("Train matrix has %d rows and %d columns", dtrain.num_row(), dtrain.num_col())
    watchlist = [(dtrain, "train")]
    if val is not None:
        dval = _matrix(val)
        log.info("Validation matrix has %d rows", dval.num_row())
        watchlist.append((dval, "validation"))
    early = cfg.early_stopping_rounds if val is not None else None
    # Metric lines are printed by rank 0 itself (not relayed through the tracker), so they read
    # `[<iter>]\ttrain-<metric>:<value>` as in the container's log.
    monitor = xgb.callback.EvaluationMonitor(logger=lambda msg: print(msg.strip(), flush=True))
    sys.stdout.flush()
    booster = xgb.train(
        cfg.params,
        dtrain,
        num_boost_round=cfg.num_round,
        evals=watchlist,
        early_stopping_rounds=early,
        verbose_eval=False,
        callbacks=[monitor],
    )
    if model_dir is not None:
        model_dir.mkdir(parents=True, exist_ok=True)
        # UBJSON, xgboost 3's own format; Booster().load_model reads it without an extension.
        (model_dir / MODEL_NAME).write_bytes(booster.save_raw(raw_format="ubj"))


def run() -> None:
    """Validate, load this host's channels and train (alone, or with the other hosts)."""
    config_dir = _dir("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
    hyperparameters = _read_json(config_dir / "hyperparameters.json")
    channels = _read_json(config_dir / "inputdataconfig.json")
    resources = _read_json(config_dir / "resourceconfig.json")
    log.info("Running XGBoost Sagemaker in algorithm mode")
    cfg = validate({k: str(v) for k, v in hyperparameters.items()})
    data.check_channels(channels)
    data_dir = _dir("SM_INPUT_DIR", "/opt/ml/input") / "data"
    train_path, val_path = data_dir / "train", data_dir / "validation"
    train = data.load("train", train_path, channels["train"], cfg.csv_weights, log.info)
    val = None
    if "validation" in channels:
        val = data.load("validation", val_path, channels["validation"], cfg.csv_weights, log.info)
    model_dir = _dir("SM_MODEL_DIR", "/opt/ml/model")
    hosts = sorted(resources.get("hosts") or ["algo-1"])
    current = resources.get("current_host", hosts[0])
    if len(hosts) == 1:
        if train is None:
            raise UserError(f"No data in training channel path {train_path}")
        if "validation" in channels and val is None:
            raise UserError(f"No data in validation channel path {val_path}")
        log.info("Single node training.")
        _train(cfg, train, val, model_dir)
        return
    has_data = train is not None and ("validation" not in channels or val is not None)
    first_port, train_port = distributed.ports()
    participants = distributed.hosts_with_data(hosts, current, has_data, first_port)
    if not participants:
        raise RuntimeError("No hosts received training data.")
    if current not in participants:
        log.warning(
            "Host %s does not have data. Will broadcast to cluster and will not be used "
            "in distributed training.",
            current,
        )
        return
    log.info("Distributed node training with %d hosts: %s", len(participants), participants)
    # The hosts share this machine's cores: more OpenMP threads than cores stalls the allreduce.
    cfg.params.setdefault("nthread", max(1, (os.cpu_count() or 1) // len(participants)))
    with distributed.communicator(participants, current, train_port):
        assert train is not None
        _train(cfg, train, val, model_dir if current == participants[0] else None)


def main() -> int:
    """Exit 0 on success; on any error write the failure file and exit 1 (contract §4.6)."""
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="[%(asctime)s:%(levelname)s] %(message)s",
        datefmt="%Y-%m-%d:%H:%M:%S",
    )
    try:
        run()
    except Exception as exc:  # every failure becomes the job's FailureReason
        trace = traceback.format_exc()
        sys.stdout.flush()
        print(trace, file=sys.stderr, flush=True)
        failure = _dir("SM_OUTPUT_DIR", "/opt/ml/output") / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"framework error: \n{trace}\n{exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
