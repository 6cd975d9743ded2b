"""The committed split is the lesson's, byte for byte, and can be rebuilt from titanic.csv."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "data"


def _make_titanic():
    spec = importlib.util.spec_from_file_location("make_titanic", DATA / "make_titanic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuilt_split_matches_published_hashes(tmp_path):
    make = _make_titanic()
    paths = make.split(DATA / "titanic.csv", tmp_path)
    for name, path in paths.items():
        assert make.sha256(path) == make.EXPECTED_SHA256[name], name
        assert path.read_bytes() == (DATA / name).read_bytes()


def test_committed_files_match_hashes():
    make = _make_titanic()
    assert make.sha256(DATA / "titanic.csv") == make.SOURCE_SHA256
    for name, digest in make.EXPECTED_SHA256.items():
        assert make.sha256(DATA / name) == digest


def test_shapes_and_stratification():
    full = pd.read_csv(DATA / "titanic.csv")
    train = pd.read_csv(DATA / "titanic_train.csv")
    test = pd.read_csv(DATA / "titanic_test.csv")
    assert full.shape == (891, 12)
    assert len(train) == 712 and len(test) == 179
    assert set(train.PassengerId).isdisjoint(test.PassengerId)
    assert abs(train.Survived.mean() - test.Survived.mean()) < 0.01
