"""helpers/csvcheck.py: is a CSV fit for built-in XGBoost, and what to change."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from helpers import AWS_helpers as h


def test_builtin_csv_rejects_the_raw_titanic_file() -> None:
    result = h.check_builtin_csv("data/titanic_train.csv")
    assert not result.ok and not result
    text = repr(result)
    assert text.startswith("CsvCheck(ok=False) titanic_train.csv: 712 rows × 12 columns")
    assert "header=False" in text and "encode them as numbers" in text
    assert "put the label (e.g. Survived) first" in text


def test_builtin_csv_accepts_a_prepared_file(tmp_path: Any) -> None:
    path = tmp_path / "train.csv"
    frame = pd.DataFrame({"Survived": [0, 1, 1], "Pclass": [3, 1, 2], "Age": [22.0, None, 30.0]})
    frame.to_csv(path, header=False, index=False)
    result = h.check_builtin_csv(path)
    assert result.ok and result.problems == [] and "fit for built-in XGBoost" in repr(result)


def test_builtin_csv_names_each_fix(tmp_path: Any) -> None:
    frame = pd.DataFrame({"Survived": [0, 1, None, 1], "Fare": [7.25, 71.3, 8.05, 53.1]})
    indexed = tmp_path / "indexed.csv"
    frame.dropna().to_csv(indexed, header=False)
    assert "index=False" in repr(h.check_builtin_csv(indexed))
    unlabelled = tmp_path / "unlabelled.csv"
    frame.to_csv(unlabelled, header=False, index=False)
    assert "missing in 1 rows: drop those rows" in repr(h.check_builtin_csv(unlabelled))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "the file is empty" in repr(h.check_builtin_csv(empty))
    texty = tmp_path / "texty.csv"
    texty.write_text("1,male,22\n0,female,38\n")
    assert h.check_builtin_csv(texty).problems == [
        "columns [1] hold text (e.g. 1: 'male'): encode them as numbers or drop them"
    ]
    only_header = tmp_path / "header.csv"
    only_header.write_text("Survived,Fare\n")
    assert h.check_builtin_csv(only_header).problems
    regression = tmp_path / "regression.csv"
    pd.DataFrame({"y": [3.5, 1.25, 2.0], "x": [1, 2, 3]}).to_csv(
        regression, header=False, index=False
    )
    assert h.check_builtin_csv(regression, binary=False).ok
    with pytest.raises(h.HelperError, match="check the path"):
        h.check_builtin_csv(tmp_path / "missing.csv")
