"""The training scripts learn, save, reload, fail politely and train data-parallel for real."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
DATA = ROOT / "data"
TRAIN_CSV = DATA / "titanic_train.csv"
TEST_CSV = DATA / "titanic_test.csv"
IDENTIFIERS = {"PassengerId", "Name", "Ticket", "Cabin"}
# Variables that would make a script think it runs in a job or in a process group.
JOB_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")
# Small but sufficient: with the default seed the best epoch is 12 (test accuracy 0.80).
NN_ARGS = ["--epochs", "15", "--learning_rate", "0.003"]
SHA_LINE = re.compile(r"^rank=(\d+) weights_sha256=([0-9a-f]{16})$", re.MULTILINE)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HAS_TORCH = importlib.util.find_spec("torch") is not None
# the Python 3.10 check (make test-py310) has no torch: it runs the torch-free notebooks only
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed in this venv")
txgb = _load("train_xgboost")
tnn = _load("train_nn") if HAS_TORCH else None


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in JOB_VARS and not k.startswith("SM_")}
    env.update(extra)
    return env


def _run(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None, module=False):
    """Run a script with every warning turned into an error, as a learner's shell would."""
    target = ["-m", script] if module else [str(SCRIPTS / f"{script}.py")]
    return subprocess.run(
        [sys.executable, "-W", "error", *target, *args],
        cwd=cwd,
        env=env if env is not None else _clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _assert_clean(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_frame() -> pd.DataFrame:
    return pd.read_csv(TEST_CSV)


def _metric(stdout: str, name: str) -> float:
    """The last value of a metric, read with the regex the docstrings recommend."""
    values = re.findall(re.escape(name) + r"=([0-9.]+)", stdout)
    assert values, f"no {name}= line in:\n{stdout}"
    return float(values[-1])


# ---------------------------------------------------------------- preprocess (both scripts)


@pytest.mark.parametrize(
    "module", [pytest.param(txgb, id="xgboost"), pytest.param(tnn, id="nn", marks=needs_torch)]
)
def test_preprocess_fills_with_training_statistics_only(module):
    train, test = pd.read_csv(TRAIN_CSV), _test_frame()
    train_before, test_before = train.copy(), test.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, y, stats = module.preprocess(train)
        X_test, y_test, stats_after = module.preprocess(test, stats)

    pd.testing.assert_frame_equal(train, train_before)
    pd.testing.assert_frame_equal(test, test_before)
    assert list(X.columns) == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    assert not IDENTIFIERS & set(X.columns)
    assert not X.isna().any().any() and not X_test.isna().any().any()
    assert X.dtypes.eq(float).all()
    assert len(y) == len(train) and len(y_test) == len(test)
    assert stats_after == stats

    assert train["Age"].isna().sum() > 0 and test["Age"].isna().sum() > 0
    assert stats["fill"]["Age"] == train["Age"].median() != test["Age"].median()
    assert stats["fill"]["Fare"] == train["Fare"].median()
    assert stats["fill"]["Embarked"] == train["Embarked"].mode().iloc[0]
    assert (X_test.loc[test["Age"].isna(), "Age"] == stats["fill"]["Age"]).all()
    assert (X.loc[train["Embarked"].isna(), "Embarked"] == 0.0).all()  # S, the mode


@needs_torch
def test_both_scripts_preprocess_alike():
    """The copies in the two self-contained scripts must not drift apart."""
    train = pd.read_csv(TRAIN_CSV)
    X1, y1, s1 = txgb.preprocess(train)
    X2, y2, s2 = tnn.preprocess(train)
    pd.testing.assert_frame_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert s1 == s2


@needs_torch
def test_preprocess_without_label_and_with_missing_columns():
    X, y, _ = txgb.preprocess(
        _test_frame().drop(columns="Survived"), txgb.preprocess(_test_frame())[2]
    )
    assert y is None and len(X) == 179
    with pytest.raises(ValueError, match="Fare"):
        tnn.preprocess(_test_frame().drop(columns="Fare"))


@needs_torch
def test_accuracy_does_not_broadcast():
    y = np.array([1, 0, 1, 1])
    proba = np.array([[0.9], [0.2], [0.4], [0.6]])  # the (n, 1) shape behind the lesson's "98%"
    assert txgb.accuracy(y, proba) == tnn.accuracy(y, proba) == 0.75
    with pytest.raises(ValueError):
        txgb.accuracy(y, proba[:3])


# ---------------------------------------------------------------- train_xgboost.py


@pytest.fixture(scope="module")
def xgb_model(tmp_path_factory) -> tuple[Path, str]:
    model_dir = tmp_path_factory.mktemp("xgb") / "model"
    proc = _run("train_xgboost", "--train", str(TRAIN_CSV), "--model_dir", str(model_dir), cwd=ROOT)
    _assert_clean(proc)
    return model_dir, proc.stdout


def test_xgboost_learns_and_reports_metrics(xgb_model):
    model_dir, stdout = xgb_model
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "preprocessing.json",
        "xgboost-model.json",
    ]
    booster, stats = txgb.load_model(model_dir)
    test = _test_frame()
    assert txgb.accuracy(test["Survived"], txgb.predict_proba(booster, stats, test)) >= 0.78

    assert "train_rows=569 validation_rows=143" in stdout
    assert re.search(r"^round=100 train:logloss=[0-9.]+ validation:logloss=[0-9.]+$", stdout, re.M)
    last = stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"train:accuracy=[0-9.]+ validation:accuracy=[0-9.]+ validation:logloss=[0-9.]+", last
    )
    assert 0.75 < _metric(stdout, "validation:accuracy") <= 1.0


def test_xgboost_reload_predicts_identically(xgb_model):
    model_dir, _ = xgb_model
    test = _test_frame()
    first = txgb.predict_proba(*txgb.load_model(model_dir), test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = txgb.predict_proba(*txgb.load_model(model_dir / "xgboost-model.json"), test)
    np.testing.assert_array_equal(first, again)


def test_xgboost_as_module_reads_channel_and_is_reproducible(xgb_model, tmp_path):
    """Run it as the SageMaker XGBoost image does: `python -m`, data in a channel, SM_MODEL_DIR."""
    model_dir, _ = xgb_model
    channel, job_model_dir = tmp_path / "train", tmp_path / "model"
    channel.mkdir()
    shutil.copy(TRAIN_CSV, channel / "passengers.csv")
    env = _clean_env(SM_CHANNEL_TRAIN=str(channel), SM_MODEL_DIR=str(job_model_dir))
    before = sorted(p.name for p in SCRIPTS.iterdir())
    proc = _run(
        "train_xgboost",
        "--train",
        "passengers.csv",
        "--early_stopping_rounds",
        "",  # how SageMaker passes a None hyperparameter
        cwd=SCRIPTS,
        env=env,
        module=True,
    )
    _assert_clean(proc)
    assert sorted(p.name for p in SCRIPTS.iterdir()) == before
    same_seed_same_model = (job_model_dir / "xgboost-model.json").read_bytes()
    assert same_seed_same_model == (model_dir / "xgboost-model.json").read_bytes()


def test_xgboost_early_stopping_keeps_best_rounds(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SM_CHANNEL_TRAIN", raising=False)
    args = ["--train", str(TRAIN_CSV), "--num_round", "300", "--early_stopping_rounds", "10"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert txgb.main([*args, "--model_dir", str(tmp_path)]) == 0
    best = int(re.search(r"^best_round=(\d+)$", capsys.readouterr().out, re.M).group(1))
    booster, _ = txgb.load_model(tmp_path)
    assert best < 300 and booster.num_boosted_rounds() == best


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--train", "nope.csv"], "no file"),
        (["--max_depth", "0"], "--max_depth"),
        (["--eta", "-0.1"], "--eta"),
        (["--subsample", "1.5"], "--subsample"),
        (["--num_round", "ten"], "--num_round"),
        (["--validation_fraction", "1"], "--validation_fraction"),
        (["--early_stopping_rounds", "-3"], "--early_stopping_rounds"),
    ],
)
def test_xgboost_bad_arguments_fail_in_one_line(args, expected, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SM_CHANNEL_TRAIN", raising=False)
    shutil.copy(TRAIN_CSV, tmp_path / "titanic_train.csv")
    with pytest.raises(SystemExit) as exit_info:
        txgb.main([*args, "--model_dir", str(tmp_path / "m")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("train_xgboost.py: error:") and expected in err
    assert not (tmp_path / "m").exists()


def test_xgboost_unlabelled_csv_fails_in_one_line(tmp_path):
    _test_frame().drop(columns="Survived").to_csv(tmp_path / "unlabelled.csv", index=False)
    proc = _run("train_xgboost", "--train", "unlabelled.csv", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Survived" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- train_nn.py


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = tnn.prepare_npz(TRAIN_CSV, out)
    assert paths == {"train": out / "train_data.npz", "val": out / "val_data.npz"}
    return out


@pytest.fixture(scope="module")
def nn_single(npz_dir, tmp_path_factory) -> tuple[Path, str]:
    """One process, run as in a job: inputs found in the channels, output in SM_MODEL_DIR."""
    model_dir, work = npz_dir / "single", tmp_path_factory.mktemp("cwd")
    env = _clean_env(
        SM_CHANNEL_TRAIN=str(npz_dir), SM_CHANNEL_VAL=str(npz_dir), SM_MODEL_DIR=str(model_dir)
    )
    args = ["--train", "train_data.npz", "--val", "val_data.npz", *NN_ARGS]
    proc = _run("train_nn", *args, cwd=work, env=env)
    _assert_clean(proc)
    assert list(work.iterdir()) == []
    return model_dir, proc.stdout


def _nn_test_accuracy(model_dir: Path) -> float:
    test = _test_frame()
    model, meta = tnn.load_model(model_dir)
    return tnn.accuracy(test["Survived"], tnn.predict_proba(model, meta, test))


@needs_torch
def test_prepare_npz_scales_with_training_part_only(npz_dir):
    with np.load(npz_dir / "train_data.npz", allow_pickle=False) as train:
        X, mean = train["X_train"], train["scaler_mean"]
        assert X.shape == (569, 7) and train["y_train"].shape == (569,)
        assert list(train["feature_names"]) == list(tnn.FEATURES)
        stats = json.loads(str(train["preprocessing_json"]))
    with np.load(npz_dir / "val_data.npz", allow_pickle=False) as val:
        assert val["X_val"].shape == (143, 7) and set(val.files) == {"X_val", "y_val"}
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)
    assert stats["fill"]["Age"] == pd.read_csv(TRAIN_CSV)["Age"].median()
    raw_train_part, _, _ = tnn.preprocess(pd.read_csv(TRAIN_CSV))
    assert not np.allclose(mean, raw_train_part.to_numpy().mean(axis=0))  # not all 712 rows


@needs_torch
def test_nn_learns_and_reports_metrics(nn_single):
    model_dir, stdout = nn_single
    assert [p.name for p in model_dir.iterdir()] == ["model.pt"]
    assert _nn_test_accuracy(model_dir) >= 0.78
    assert "device=cpu world_size=1 rank=0 backend=none" in stdout
    assert re.search(
        r"^epoch=15 train:loss=[0-9.]+ validation:loss=[0-9.]+ validation:accuracy=[0-9.]+$",
        stdout,
        re.M,
    )
    summary = re.search(
        r"^best_epoch=(\d+) train:accuracy=[0-9.]+ validation:loss=.*$", stdout, re.M
    )
    assert summary and 1 <= int(summary.group(1)) <= 15
    assert 0.75 < _metric(stdout, "validation:accuracy") <= 1.0
    assert SHA_LINE.search(stdout).group(1) == "0"


@needs_torch
def test_nn_model_is_plain_data_and_saves_the_best_epoch(nn_single):
    import torch

    model_dir, stdout = nn_single
    saved = torch.load(model_dir / "model.pt", weights_only=True)
    assert set(saved) >= {"state_dict", "arch", "scaler_mean", "scaler_scale", "preprocessing"}
    assert saved["feature_names"] == list(tnn.FEATURES)
    best_epoch = saved["metrics"]["best_epoch"]
    assert f"best_epoch={best_epoch} " in stdout
    epoch_lines = re.findall(r"^epoch=(\d+) .*validation:loss=([0-9.]+)", stdout, re.M)
    assert min(float(loss) for _, loss in epoch_lines) >= round(
        saved["metrics"]["validation_loss"], 4
    )


@needs_torch
def test_nn_reload_and_in_process_training_agree(nn_single, npz_dir, monkeypatch, capsys):
    """Reloading twice predicts the same, and training in-process gives the same weights."""
    import torch

    model_dir, stdout = nn_single
    test = _test_frame()
    first = tnn.predict_proba(*tnn.load_model(model_dir), test)
    np.testing.assert_array_equal(first, tnn.predict_proba(*tnn.load_model(model_dir), test))

    for var in JOB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.chdir(npz_dir)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        assert tnn.main([*NN_ARGS, "--model_dir", str(npz_dir / "inproc")]) == 0
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    in_process = SHA_LINE.search(capsys.readouterr().out).group(2)
    assert in_process == SHA_LINE.search(stdout).group(2)
    np.testing.assert_array_equal(
        first, tnn.predict_proba(*tnn.load_model(npz_dir / "inproc"), test)
    )


@pytest.fixture(scope="module")
def ddp_runs(npz_dir, tmp_path_factory) -> dict[str, tuple[list[str], Path]]:
    """Two 2-process groups trained at once: torchrun-style variables and SageMaker's SM_HOSTS.

    Both groups run side by side because their time goes mostly to waiting for each other.
    """
    port_a, port_b = str(_free_port()), str(_free_port())
    torchrun = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port_a}
    sm_hosts = {
        "SM_HOSTS": json.dumps(["algo-2", "algo-1"]),  # the rank comes from the sorted list
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": port_b,
    }
    groups = {
        "torchrun": [{**torchrun, "RANK": str(r), "LOCAL_RANK": "0"} for r in (0, 1)],
        "sm_hosts": [{**sm_hosts, "SM_CURRENT_HOST": h} for h in ("algo-1", "algo-2")],
    }
    # One group also stops early, which the processes must decide together.
    extra_args = {"torchrun": [], "sm_hosts": ["--patience", "2"]}
    procs: dict[str, list[subprocess.Popen]] = {}
    dirs = {}
    for name, envs in groups.items():
        dirs[name] = tmp_path_factory.mktemp(name)
        procs[name] = []
        for i, extra in enumerate(envs):
            # Each process gets its own model folder, as each SageMaker host has its own.
            args = [*NN_ARGS, *extra_args[name], "--model_dir", str(dirs[name] / f"model{i}")]
            procs[name].append(
                subprocess.Popen(
                    [sys.executable, "-W", "error", str(SCRIPTS / "train_nn.py"), *args],
                    cwd=npz_dir,
                    env=_clean_env(**extra),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
    results = {}
    try:
        for name, group in procs.items():
            outputs = []
            for proc in group:
                out, err = proc.communicate(timeout=240)
                assert proc.returncode == 0, err
                assert "Traceback" not in err and "Warning" not in err, err
                outputs.append(out)
            results[name] = (outputs, dirs[name])
    finally:
        for group in procs.values():
            for proc in group:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    return results


@needs_torch
@pytest.mark.parametrize("group", ["torchrun", "sm_hosts"])
def test_nn_data_parallel_replicas_agree(group, ddp_runs, nn_single):
    outputs, folder = ddp_runs[group]
    hashes = [SHA_LINE.search(out).groups() for out in outputs]
    assert [rank for rank, _ in hashes] == ["0", "1"]
    assert hashes[0][1] == hashes[1][1]
    for rank, out in enumerate(outputs):
        assert f"device=cpu world_size=2 rank={rank} backend=gloo" in out
    # Validation numbers are summed over both processes, so both print the same lines.
    for pattern in (r"^best_epoch=.*$", r"^epoch=.*$", r"^early_stop.*$"):
        assert re.findall(pattern, outputs[0], re.M) == re.findall(pattern, outputs[1], re.M)
    assert (folder / "model0" / "model.pt").is_file()
    assert not (folder / "model1").exists()
    single = _nn_test_accuracy(nn_single[0])
    assert abs(_nn_test_accuracy(folder / "model0") - single) <= 0.02


@needs_torch
@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, (1, 0)),
        ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1", "MASTER_ADDR": "algo-1"}, (1, 0)),
        (
            {
                "WORLD_SIZE": "4",
                "RANK": "3",
                "LOCAL_RANK": "1",
                "MASTER_ADDR": "h",
                "MASTER_PORT": "1",
            },
            (4, 3),
        ),
        ({"SM_HOSTS": '["algo-3","algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-2"}, (3, 1)),
    ],
)
def test_detect_cluster(env, expected):
    cluster = tnn.detect_cluster(env)
    assert (cluster.world_size, cluster.rank) == expected
    assert cluster.distributed == (expected[0] > 1)


@needs_torch
@pytest.mark.parametrize(
    "env, expected",
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be an integer"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR, MASTER_PORT not set"),
        ({"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT not set"),
        ({"SM_HOSTS": "algo-1,algo-2"}, "SM_HOSTS must be a JSON list"),
        ({"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-9"}, "is not in SM_HOSTS"),
        (
            {"SM_HOSTS": '["a","b"]', "SM_CURRENT_HOST": "a", "MASTER_PORT": "x"},
            "MASTER_PORT='x'",
        ),
    ],
)
def test_detect_cluster_bad_variables_exit_in_one_line(env, expected):
    with pytest.raises(SystemExit) as exit_info:
        tnn.detect_cluster(env)
    message = str(exit_info.value.code)
    assert message.startswith("train_nn.py: error:") and expected in message
    assert "\n" not in message


def _npz_without_keys(folder: Path) -> str:
    np.savez(folder / "lesson_style.npz", np.zeros((3, 7)), np.zeros(3))
    return "lesson_style.npz"


@needs_torch
@pytest.mark.parametrize(
    "args, expected",
    [
        (["--train", "missing.npz"], "no file"),
        (["--train", "BAD_NPZ"], "X_train"),
        (["--val", "BAD_NPZ"], "X_val"),
        (["--train", "titanic_train.csv"], "np.savez"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "-5"], "--epochs"),
        (["--learning_rate", "0"], "--learning_rate"),
        (["--learning_rate", "fast"], "--learning_rate"),
        (["--batch_size", "0"], "--batch_size"),
        (["--hidden", "64,0"], "--hidden"),
    ],
)
def test_nn_bad_arguments_fail_in_one_line(args, expected, npz_dir, tmp_path, capsys, monkeypatch):
    for name in ("train_data.npz", "val_data.npz"):
        shutil.copy(npz_dir / name, tmp_path / name)
    shutil.copy(TRAIN_CSV, tmp_path / "titanic_train.csv")
    args = [_npz_without_keys(tmp_path) if a == "BAD_NPZ" else a for a in args]
    monkeypatch.chdir(tmp_path)
    for var in ("SM_CHANNEL_TRAIN", "SM_CHANNEL_VAL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        tnn.main([*args, "--model_dir", str(tmp_path / "m")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("train_nn.py: error:") and expected in err
    assert not (tmp_path / "m").exists()


@needs_torch
def test_nn_bad_argument_has_no_traceback(tmp_path):
    proc = _run("train_nn", "--train", "missing.npz", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "missing.npz" in proc.stderr
    assert "Traceback" not in proc.stderr
