"""Train a small PyTorch network on the Titanic passengers, alone or data-parallel.

The same file runs on a laptop, in a SageMaker notebook, as a SageMaker PyTorch entry point and in
the course's local stand-in. It is self-contained because SageMaker uploads only the entry point
when no ``source_dir`` is given.

Usage (the lesson's command line, plus a few additions)::

    python train_nn.py --train train_data.npz --val val_data.npz --epochs 60 --learning_rate 0.001

``--train``/``--val`` are ``.npz`` files with arrays ``X_train``/``y_train`` and ``X_val``/``y_val``
(``prepare_npz`` writes them from the CSV). A relative name is looked up in ``$SM_CHANNEL_TRAIN`` /
``$SM_CHANNEL_VAL`` when set (inside a training job), else in the working directory. The best epoch
by validation loss goes to ``<model_dir>/model.pt``; ``--model_dir`` defaults to ``$SM_MODEL_DIR``,
else the working directory.

Data-parallel training starts by itself when more than one process takes part:

* torchrun style: ``WORLD_SIZE`` > 1 with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
  ``MASTER_PORT``;
* SageMaker PyTorch container without a ``distribution``: ``SM_HOSTS`` lists more than one host;
  the rank is the index of ``SM_CURRENT_HOST`` in the sorted list, one process per host.

Each process then trains on its own shard of every epoch, gradients are averaged after every batch
(DistributedDataParallel), and validation numbers are summed over all processes, so every process
prints the same metrics and ends with the same weights: compare the ``weights_sha256`` lines.
``--batch_size`` is the global batch; each of N processes takes ``batch_size / N`` rows a step.

Metric lines are ``name=value`` pairs separated by spaces, for example::

    epoch=10 train:loss=0.4512 validation:loss=0.4410 validation:accuracy=0.8112
    best_epoch=41 train:accuracy=0.8366 validation:loss=0.4203 validation:accuracy=0.8322

The summary line comes after the last epoch line, so a metric's last value is the saved (best)
model's (the epoch lines' validation:loss and validation:accuracy included).
A SageMaker ``metric_definitions`` list that reads them::

    [{"Name": "validation:accuracy", "Regex": r"validation:accuracy=([0-9.]+)"},
     {"Name": "validation:loss", "Regex": r"validation:loss=([0-9.]+)"},
     {"Name": "train:loss", "Regex": r"train:loss=([0-9.]+)"},
     {"Name": "train:accuracy", "Regex": r"train:accuracy=([0-9.]+)"}]

Notebooks import the helpers: ``preprocess``, ``prepare_npz``, ``load_model``, ``predict_proba``,
``accuracy``.
"""

# Postponed annotations keep the type hints harmless on the older Pythons of SageMaker images.
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
SEX_CODES = {"male": 0, "female": 1}
EMBARKED_CODES = {"S": 0, "C": 1, "Q": 2}
LABEL = "Survived"
MODEL_FILE = "model.pt"
DEFAULT_EPOCHS = 60


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


def prepare_npz(
    train_csv: str | os.PathLike[str] | pd.DataFrame,
    out_dir: str | os.PathLike[str],
    val_fraction: float = 0.2,
    seed: int = 42,
) -> dict[str, Path]:
    """Write train_data.npz and val_data.npz, scaled with statistics of the training part only."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    raw = train_csv if isinstance(train_csv, pd.DataFrame) else pd.read_csv(train_csv)
    X, y, stats = preprocess(raw)
    if y is None:
        raise ValueError(f"prepare_npz: no '{LABEL}' column in the training data")
    X_train, X_val, y_train, y_val = train_test_split(
        X.to_numpy(), y, test_size=val_fraction, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train_data.npz", "val": out / "val_data.npz"}
    np.savez(
        paths["train"],
        X_train=scaler.transform(X_train).astype(np.float32),
        y_train=y_train,
        scaler_mean=scaler.mean_,
        scaler_scale=scaler.scale_,
        feature_names=np.array(stats["features"]),
        preprocessing_json=np.array(json.dumps(stats)),
    )
    np.savez(paths["val"], X_val=scaler.transform(X_val).astype(np.float32), y_val=y_val)
    return paths


class TitanicNet(nn.Module):
    """A small fully connected network that outputs one survival logit per passenger."""

    def __init__(self, n_features: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def accuracy(y_true: Any, proba: Any, threshold: float = 0.5) -> float:
    """Share of correct 0/1 predictions; flattens both sides so shapes cannot broadcast."""
    truth = np.asarray(y_true).ravel()
    predicted = (np.asarray(proba, dtype=float).ravel() >= threshold).astype(truth.dtype)
    if truth.shape != predicted.shape:
        raise ValueError(f"accuracy: {truth.size} labels but {predicted.size} predictions")
    return float(np.mean(predicted == truth))


def load_model(path_or_dir: str | os.PathLike[str]) -> tuple[TitanicNet, dict[str, Any]]:
    """Rebuild the saved network (a folder or the path of its model.pt) for prediction."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / MODEL_FILE
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = TitanicNet(saved["arch"]["n_features"], saved["arch"]["hidden"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    meta = {key: value for key, value in saved.items() if key != "state_dict"}
    return model, meta


def predict_proba(model: nn.Module, meta: dict[str, Any], df_raw: pd.DataFrame) -> np.ndarray:
    """Survival probability for raw passenger rows, with the training fill values and scaler."""
    if meta.get("preprocessing") is None or meta.get("scaler_mean") is None:
        raise ValueError(
            "predict_proba: this model.pt has no preprocessing statistics or scaler; "
            "train it on files written by prepare_npz()"
        )
    X, _, _ = preprocess(df_raw, meta["preprocessing"])
    scaled = (X.to_numpy(dtype=np.float64) - np.asarray(meta["scaler_mean"])) / np.asarray(
        meta["scaler_scale"]
    )
    with torch.no_grad():
        logits = model(torch.as_tensor(scaled, dtype=torch.float32))
    return torch.sigmoid(logits).squeeze(1).numpy()


def weights_sha256(model: nn.Module) -> str:
    """A short fingerprint of the weights, to show that replicas ended identical."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class Cluster:
    """Who takes part in training: world size, this process's rank, device and backend."""

    def __init__(self, world_size: int, rank: int, local_rank: int, init_method: str | None):
        self.world_size = world_size
        self.rank = rank
        self.local_rank = local_rank
        self.init_method = init_method
        self.cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local_rank}" if self.cuda else "cpu")
        self.backend = ("nccl" if self.cuda else "gloo") if world_size > 1 else "none"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(env: dict[str, str], name: str, default: str) -> int:
    """An integer variable, or a one-line exit naming it (not a traceback)."""
    value = env.get(name, default) or default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"train_nn.py: error: {name}={value!r} must be an integer") from None


def detect_cluster(env: dict[str, str] | None = None) -> Cluster:
    """Read torchrun or SageMaker variables; alone when neither names more than one process."""
    env = dict(os.environ) if env is None else env
    world = _env_int(env, "WORLD_SIZE", "1")
    if world > 1:
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise SystemExit(
                f"train_nn.py: error: WORLD_SIZE={world} but {', '.join(missing)} not set "
                "(start the processes with torchrun, or set them)"
            )
        rank, local_rank = _env_int(env, "RANK", "0"), _env_int(env, "LOCAL_RANK", "0")
        return Cluster(world, rank, local_rank, "env://")
    try:
        hosts = sorted(json.loads(env.get("SM_HOSTS", "[]") or "[]"))
    except (ValueError, TypeError):
        raise SystemExit("train_nn.py: error: SM_HOSTS must be a JSON list of host names") from None
    if len(hosts) > 1:
        current = env.get("SM_CURRENT_HOST", "")
        if current not in hosts:
            raise SystemExit(
                f"train_nn.py: error: SM_CURRENT_HOST={current!r} is not in SM_HOSTS={hosts}"
            )
        # The PyTorch container sets MASTER_ADDR/PORT for every job; the defaults match it.
        addr = env.get("MASTER_ADDR") or hosts[0]
        port = _env_int(env, "MASTER_PORT", "7777")
        return Cluster(len(hosts), hosts.index(current), 0, f"tcp://{addr}:{port}")
    return Cluster(1, 0, 0, None)


def start_cluster(cluster: Cluster, timeout_s: float) -> None:
    """Join the process group (no-op when alone)."""
    if cluster.cuda:
        torch.cuda.set_device(cluster.device)
    if cluster.distributed:
        dist.init_process_group(
            backend=cluster.backend,
            init_method=cluster.init_method,
            world_size=cluster.world_size,
            rank=cluster.rank,
            timeout=timedelta(seconds=timeout_s),
        )


def seed_everything(seed: int) -> None:
    """Make runs repeatable: same seed, same weights."""
    # cuBLAS needs this set before its first use to give deterministic matrix products.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def load_arrays(path: Path, split: str) -> dict[str, np.ndarray]:
    """Read an npz written by prepare_npz; raises ValueError naming what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile):
        raise ValueError("not an .npz archive of plain arrays; write it with np.savez()") from None
    needed = [f"X_{split}", f"y_{split}"]
    if not all(key in arrays for key in needed):
        raise ValueError(
            f"needs arrays {needed} but has {sorted(arrays)}; "
            f"write it with np.savez(path, X_{split}=..., y_{split}=...) or prepare_npz()"
        )
    X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X_{split} {X.shape} and y_{split} {y.shape} do not match (n, k) / (n,)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_{split} must hold 0/1 survival labels")
    return arrays


def sum_over_processes(values: list[float], cluster: Cluster) -> list[float]:
    """Add each number up over all processes (one collective), so every process sees the total."""
    totals = torch.tensor(values, dtype=torch.float64, device=cluster.device)
    if cluster.distributed:
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals.tolist()


def evaluation_sums(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, cluster: Cluster
) -> list[float]:
    """Summed loss, correct count and row count over this process's share of X."""
    # Process r takes rows r, r+N, ...: no row is counted twice, so totals are full-set numbers.
    X_part, y_part = X[cluster.rank :: cluster.world_size], y[cluster.rank :: cluster.world_size]
    with torch.no_grad():
        logits = model(X_part).squeeze(1)
        loss_sum = nn.functional.binary_cross_entropy_with_logits(logits, y_part, reduction="sum")
        correct = ((logits >= 0).float() == y_part).sum()
    return [loss_sum.item(), correct.item(), float(len(y_part))]


def should_stop(local_decision: bool, cluster: Cluster) -> bool:
    """Stop when any process says so, so no process waits for the others in a collective."""
    flag = torch.tensor([1.0 if local_decision else 0.0], device=cluster.device)
    if cluster.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def fit(
    args: argparse.Namespace,
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    cluster: Cluster,
) -> tuple[TitanicNet, dict[str, Any]]:
    """Mini-batch training with DDP when distributed; returns the best-epoch model and metrics."""
    device = cluster.device
    X_train = torch.as_tensor(train["X_train"], dtype=torch.float32)
    y_train = torch.as_tensor(train["y_train"], dtype=torch.float32)
    X_val = torch.as_tensor(val["X_val"], dtype=torch.float32, device=device)
    y_val = torch.as_tensor(val["y_val"], dtype=torch.float32, device=device)

    # Each process takes its shard of a shuffled epoch; alone, the shard is the whole set.
    sampler = DistributedSampler(
        TensorDataset(X_train, y_train),
        num_replicas=cluster.world_size,
        rank=cluster.rank,
        shuffle=True,
        seed=args.seed,
    )
    per_process_batch = max(1, -(-args.batch_size // cluster.world_size))
    loader = DataLoader(sampler.dataset, batch_size=per_process_batch, sampler=sampler)

    net = TitanicNet(X_train.shape[1], args.hidden).to(device)
    model: nn.Module = net
    if cluster.distributed:
        device_ids = [cluster.local_rank] if cluster.cuda else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()

    every = max(1, args.epochs // 10)
    best = {"loss": float("inf"), "epoch": 0, "state": None, "accuracy": 0.0}
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        seen, loss_total = 0, 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(xb).squeeze(1), yb)
            loss.backward()
            optimizer.step()
            loss_total += loss.item() * len(yb)
            seen += len(yb)
        model.eval()
        train_sum, train_rows, val_sum, val_hits, val_rows = sum_over_processes(
            [loss_total, seen, *evaluation_sums(net, X_val, y_val, cluster)], cluster
        )
        val_loss, val_acc = val_sum / val_rows, val_hits / val_rows
        if val_loss < best["loss"]:
            best = {"loss": val_loss, "epoch": epoch, "accuracy": val_acc}
            best["state"] = copy.deepcopy(net.state_dict())
        if epoch % every == 0 or epoch == args.epochs:
            print(
                f"epoch={epoch} train:loss={train_sum / train_rows:.4f} "
                f"validation:loss={val_loss:.4f} validation:accuracy={val_acc:.4f}",
                flush=True,
            )
        # Without --patience every process trains all epochs, so there is nothing to agree on.
        waited = epoch - best["epoch"]
        if args.patience is not None and should_stop(waited >= args.patience, cluster):
            print(f"early_stop epoch={epoch} best_epoch={best['epoch']}", flush=True)
            break

    if best["state"] is not None:  # None only when every validation loss was NaN
        net.load_state_dict(best["state"])
    net.eval()
    X_train_dev = X_train.to(device)
    _, hits, rows = sum_over_processes(
        evaluation_sums(net, X_train_dev, y_train.to(device), cluster), cluster
    )
    train_acc = hits / rows
    metrics = {
        "best_epoch": best["epoch"],
        "train_accuracy": train_acc,
        "validation_loss": best["loss"],
        "validation_accuracy": best["accuracy"],
    }
    return net.cpu(), metrics


def save_model(
    model: TitanicNet, args: argparse.Namespace, train: dict[str, np.ndarray], metrics: dict
) -> Path:
    """Write weights plus everything predict_proba needs, as plain tensors, lists and dicts."""

    def as_list(key: str) -> list | None:
        return train[key].tolist() if key in train else None

    preprocessing = None
    if "preprocessing_json" in train:
        preprocessing = json.loads(str(train["preprocessing_json"]))
    bundle = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "arch": {"n_features": int(train["X_train"].shape[1]), "hidden": list(args.hidden)},
        "feature_names": as_list("feature_names"),
        "scaler_mean": as_list("scaler_mean"),
        "scaler_scale": as_list("scaler_scale"),
        "preprocessing": preprocessing,
        "metrics": {k: (int(v) if k == "best_epoch" else float(v)) for k, v in metrics.items()},
        "hyperparameters": {
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "patience": args.patience,
        },
    }
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(bundle, out / MODEL_FILE)
    return out / MODEL_FILE


class _OneLineParser(argparse.ArgumentParser):
    """Report argument errors as one line, so a job's failure reason shows the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type, low: float, high: float, low_open: bool, hint: str):
    """Argparse type that checks a number's range and says what is allowed."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; {hint}") from None
        too_low = value <= low if low_open else value < low
        if too_low or value > high or value != value:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; {hint}")
        return value

    return parse


def _optional_positive_int(text: str) -> int | None:
    """Accept a positive integer, or an empty/none value (SageMaker sends None as '')."""
    if text.strip().lower() in ("", "none", "null"):
        return None
    return _number(int, 1, float("inf"), False, "use a whole number >= 1 or leave it out")(text)


def _hidden_sizes(text: str) -> list[int]:
    """Parse layer widths given as '64,32' or '[64, 32]' (how SageMaker passes a list)."""
    parts = [p for p in text.strip("[] ").replace(",", " ").split() if p]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use positive layer widths, e.g. 64,32")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    """The command line: the lesson's arguments with the same meaning, plus a few additions."""
    p = _OneLineParser(prog="train_nn.py", description=__doc__.splitlines()[0])
    inf = float("inf")
    p.add_argument(
        "--train",
        default="train_data.npz",
        help="npz with X_train/y_train; relative names are looked up in $SM_CHANNEL_TRAIN or cwd",
    )
    p.add_argument(
        "--val",
        default="val_data.npz",
        help="npz with X_val/y_val; relative names are looked up in $SM_CHANNEL_VAL, else cwd",
    )
    p.add_argument(
        "--epochs",
        type=_number(int, 1, inf, False, f"use a whole number >= 1, e.g. {DEFAULT_EPOCHS}"),
        default=DEFAULT_EPOCHS,
        help="passes over the training data",
    )
    p.add_argument(
        "--learning_rate",
        type=_number(float, 0, 1, True, "use a learning rate in (0, 1], e.g. 0.001"),
        default=0.001,
        help="Adam learning rate",
    )
    p.add_argument(
        "--batch_size",
        type=_number(int, 1, inf, False, "use a whole number >= 1, e.g. 64"),
        default=64,
        help="rows per optimisation step, summed over all processes",
    )
    p.add_argument(
        "--seed",
        type=_number(int, 0, 2**31 - 1, False, "use a whole number >= 0, e.g. 42"),
        default=42,
        help="seed for weights and shuffling",
    )
    p.add_argument(
        "--patience",
        type=_optional_positive_int,
        default=None,
        help="stop after this many epochs without a better validation loss (default: off)",
    )
    p.add_argument(
        "--hidden", type=_hidden_sizes, default=[64, 32], help="hidden layer widths, e.g. 64,32"
    )
    p.add_argument(
        "--dist_timeout",
        type=_number(float, 0, inf, True, "use seconds > 0, e.g. 300"),
        default=300.0,
        help="seconds to wait for the other processes before giving up",
    )
    p.add_argument(
        "--model_dir",
        default=os.environ.get("SM_MODEL_DIR", "."),
        help="where to write model.pt (default: $SM_MODEL_DIR, else the cwd)",
    )
    return p


def resolve_input(name: str, channel_env: str) -> Path:
    """A relative input name lives in the SageMaker channel folder when there is one."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    base = os.environ.get(channel_env)
    return Path(base) / path if base else Path.cwd() / path


def _read_inputs(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Load both npz files, turning every problem into a one-line argument error."""
    loaded = []
    for option, split, channel in (
        ("train", "train", "SM_CHANNEL_TRAIN"),
        ("val", "val", "SM_CHANNEL_VAL"),
    ):
        path = resolve_input(getattr(args, option), channel)
        if not path.is_file():
            where = os.environ.get(channel) or os.getcwd()
            parser.error(f"--{option}: no file {path} (relative names are looked up in {where})")
        try:
            loaded.append(load_arrays(path, split))
        except (ValueError, OSError) as exc:
            parser.error(f"--{option} {path}: {exc}")
    train, val = loaded
    if train["X_train"].shape[1] != val["X_val"].shape[1]:
        parser.error(
            f"--val: X_val has {val['X_val'].shape[1]} features but X_train has "
            f"{train['X_train'].shape[1]}; write both files with the same prepare_npz() call"
        )
    return train, val


def main(argv: list[str] | None = None) -> int:
    """Train (alone or as one process of many), report metrics, save on rank 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    train, val = _read_inputs(parser, args)

    started = time.perf_counter()
    cluster = detect_cluster()
    if not cluster.cuda and "OMP_NUM_THREADS" not in os.environ:
        # A network this small gains nothing from intra-op threads; they only fight over cores.
        torch.set_num_threads(1)
    seed_everything(args.seed)
    start_cluster(cluster, args.dist_timeout)
    try:
        print(
            f"device={cluster.device} world_size={cluster.world_size} rank={cluster.rank} "
            f"backend={cluster.backend}",
            flush=True,
        )
        print(f"train_rows={len(train['y_train'])} validation_rows={len(val['y_val'])}")
        model, metrics = fit(args, train, val, cluster)
        if cluster.is_main:
            print(f"model_saved={save_model(model, args, train, metrics)}")
        print(f"training_seconds={time.perf_counter() - started:.2f}")
        print(
            f"best_epoch={metrics['best_epoch']} train:accuracy={metrics['train_accuracy']:.4f} "
            f"validation:loss={metrics['validation_loss']:.4f} "
            f"validation:accuracy={metrics['validation_accuracy']:.4f}",
        )
        print(f"rank={cluster.rank} weights_sha256={weights_sha256(model)}", flush=True)
    finally:
        if cluster.distributed and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
