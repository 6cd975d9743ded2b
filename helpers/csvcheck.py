"""Whether a CSV suits the built-in XGBoost algorithm, and what to change when it does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from helpers.session import HelperError


@dataclass
class CsvCheck:
    """Whether a CSV suits built-in XGBoost, and what to change when it does not."""

    path: str
    rows: int  # data rows, not counting a header
    columns: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file has no problems."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        head = f"{Path(self.path).name}: {self.rows} rows × {self.columns} columns"
        if self.ok:
            return f"CsvCheck(ok=True) {head}: fit for built-in XGBoost"
        return "\n".join([f"CsvCheck(ok=False) {head}", *(f"  - {p}" for p in self.problems)])


def check_builtin_csv(path: str | Path, *, binary: bool = True) -> CsvCheck:
    """Say whether a CSV suits the built-in XGBoost algorithm (no header, label first, numbers).

    `binary=True` also requires labels 0/1, as objective binary:logistic does.

    Example:
        >>> check_builtin_csv("titanic_train.csv")
        CsvCheck(ok=False) titanic_train.csv: 712 rows × 12 columns
          - the first row looks like a header ('PassengerId', ...): write with header=False
    """
    path = Path(path)
    if not path.is_file():
        raise HelperError(f"no file {path}: check the path (os.listdir() shows what is here)")
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return CsvCheck(str(path), 0, 0, ["the file is empty: write the training rows to it"])
    except pd.errors.ParserError as err:
        raise HelperError(f"{path} is not a readable CSV ({str(err).splitlines()[0]})") from None
    result = CsvCheck(str(path), len(raw), raw.shape[1])
    problems = result.problems
    blank = raw.apply(lambda col: col.str.strip() == "")
    numbers = raw.apply(pd.to_numeric, errors="coerce")
    text = numbers.isna() & ~blank
    # A header is text on top of a column that is numeric below it.
    if len(raw) > 1 and (text.iloc[0] & ~text.iloc[1:].any()).any():
        shown = ", ".join(repr(v) for v in raw.iloc[0].tolist()[:3])
        problems.append(
            f"the first row looks like a header ({shown}, ...): write with header=False"
        )
        raw, numbers, text, blank = raw.iloc[1:], numbers.iloc[1:], text.iloc[1:], blank.iloc[1:]
        result.rows = len(raw)
    bad_columns = [int(c) for c in text.columns if text[c].any()]
    if bad_columns:
        examples = ", ".join(f"{c}: {raw[c][text[c]].iloc[0]!r}" for c in bad_columns[:3])
        problems.append(
            f"columns {bad_columns} hold text (e.g. {examples}): encode them as numbers or drop"
            " them"
        )
    label = numbers[0]
    missing = int((blank[0] | label.isna()).sum())
    if missing:
        problems.append(f"the label (first column) is missing in {missing} rows: drop those rows")
    values = label.dropna()
    if len(values) > 2 and values.is_monotonic_increasing and values.is_unique:
        problems.append(
            "the first column only counts up (0, 1, 2, ...), like a row index or ID: write with"
            " index=False and put the label first"
        )
    elif binary and not values.isin([0, 1]).all():
        problems.append(
            f"the first column has {values.nunique()} distinct values but binary:logistic needs"
            " a 0/1 label: put the label (e.g. Survived) first"
        )
    return result
