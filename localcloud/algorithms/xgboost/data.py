"""Channel checks and loading for the built-in XGBoost (contract §4.1).

CSV is read the way xgboost's own text loader reads it (that loader warns that it is deprecated
since xgboost 3.1, so it is re-implemented here): no header handling, no quoting, the label in
column 0, every token parsed as its longest numeric prefix, anything else missing. A CSV with a
header or text columns therefore trains on garbage instead of failing, as in the real image.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np

from localcloud.algorithms.xgboost.errors import UserError

CONTENT_TYPES = {
    "csv": "csv",
    "text/csv": "csv",
    "libsvm": "libsvm",
    "text/libsvm": "libsvm",
    "text/x-libsvm": "libsvm",
    "parquet": "parquet",
    "application/x-parquet": "parquet",
    "recordio-protobuf": "recordio",
    "application/x-recordio-protobuf": "recordio",
}
ALLOWED_CHANNELS = ("train", "validation", "code")
# What xgboost's text parser (dmlc strtonum) consumes of a token: blanks, sign, digits, a
# fraction, an exponent and a C float suffix. Consuming anything at all yields a value (0.0
# when there were no digits: " Mr. Ali" and "female" and "Embarked" become 0, "male" is missing).
_NUMBER_PREFIX = re.compile(r"\s*[+-]?(\d*(?:\.\d*)?)([eE][+-]?\d*)?[fF]?")
_LIBSVM_LINE = re.compile(r"^\s*[+-]?[\d.eE+-]+(:[\d.eE+-]+)?(\s+(qid:\d+|\d+:\S+))*\s*$")


def check_channels(config: dict[str, dict[str, str]]) -> None:
    """Only train (required), validation and code are accepted."""
    for name in config:
        if name not in ALLOWED_CHANNELS:
            raise UserError(f"Extraneous channel found: {name}")
    if "train" not in config:
        raise UserError("Missing required channel: train")


def content_format(channel: str, config: dict[str, str]) -> str:
    """csv / libsvm / parquet / recordio from ContentType; libsvm when none is set."""
    content_type = config.get("ContentType") or "text/libsvm"
    base, *options = [part.strip() for part in content_type.lower().split(";")]
    kind = CONTENT_TYPES.get(base)
    if kind is None:
        raise UserError(f"Channel configuration for '{channel}' channel is not supported: {config}")
    for option in options:
        key, _, value = option.partition("=")
        if kind == "csv" and key.strip() == "label_size" and value.strip() != "1":
            raise UserError(
                f"{content_type} is not an accepted csv ContentType. Optional "
                "parameter label_size must be equal to 1"
            )
    if kind == "libsvm" and config.get("TrainingInputMode") == "Pipe":
        raise UserError("Pipe mode not supported for LibSVM.")
    return kind


def channel_files(path: Path) -> list[Path]:
    """Every data file under a channel folder, sorted; hidden files are an error."""
    if not path.is_dir():
        return []
    files = []
    for item in sorted(path.rglob("*")):
        if any(part.startswith(".") for part in item.relative_to(path).parts):
            raise UserError("Hidden file found in the data path! Remove that before training.")
        if item.is_file():
            files.append(item)
    return files


def csv_delimiter(first_file: Path) -> str:
    """The delimiter of the first line, as csv.Sniffer sees it (',' when it cannot tell)."""
    with open(first_file, encoding="utf-8", errors="replace") as handle:
        line = handle.readline()
    try:
        return csv.Sniffer().sniff(line, delimiters=",\t|; ").delimiter
    except csv.Error:
        return ","


def _token(text: str) -> float:
    match = _NUMBER_PREFIX.match(text)
    if match is None or match.end() == 0:
        return np.nan
    mantissa = match.group(1)
    if not any(ch.isdigit() for ch in mantissa):
        return 0.0
    sign = "-" if text.lstrip().startswith("-") else ""
    exponent = match.group(2) or ""
    return float(sign + mantissa + (exponent if exponent[-1:].isdigit() else ""))


def _read_csv_file(path: Path, delimiter: str) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_csv(
            path,
            header=None,
            sep=delimiter,
            dtype="float64",
            engine="c",
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            keep_default_na=False,
            na_values=[""],
        )
        return frame.to_numpy()
    except (ValueError, pd.errors.ParserError):
        pass
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if line.strip():
                rows.append([_token(t) for t in line.split(delimiter)])
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _stack(blocks: list[np.ndarray]) -> np.ndarray:
    width = max(b.shape[1] for b in blocks)
    padded = [np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=np.nan) for b in blocks]
    return np.vstack(padded)


def _trim_missing_columns(features: np.ndarray) -> np.ndarray:
    """Drop trailing all-missing columns: xgboost's sparse loader never sees them."""
    present = np.flatnonzero(~np.isnan(features).all(axis=0))
    return features[:, : present[-1] + 1] if present.size else features[:, :0]


def read_csv(files: list[Path], delimiter: str, csv_weights: bool) -> dict[str, Any]:
    """Label (column 0), optional weight (column 1) and features of CSV files."""
    table = _stack([_read_csv_file(f, delimiter) for f in files])
    label = np.nan_to_num(table[:, 0], nan=0.0)
    first = 2 if csv_weights else 1
    weight = np.nan_to_num(table[:, 1], nan=0.0) if csv_weights else None
    return {"data": _trim_missing_columns(table[:, first:]), "label": label, "weight": weight}


def read_libsvm(files: list[Path]) -> dict[str, Any]:
    """LibSVM files; the first line of each is checked as the container does."""
    from scipy import sparse
    from sklearn.datasets import load_svmlight_file

    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline().rstrip("\r\n")
        if first.strip() and not _LIBSVM_LINE.match(first):
            raise UserError(
                f"First line '{first[:50]}...' of file '{path.name}' is not 'LIBSVM' "
                "format. Please ensure the file is in 'LIBSVM' format."
            )
    loaded = [load_svmlight_file(str(p), zero_based=True) for p in files if p.stat().st_size]
    if not loaded:
        return {"data": np.zeros((0, 0)), "label": np.zeros(0), "weight": None}
    width = max(x.shape[1] for x, _ in loaded)
    blocks = [
        sparse.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], width))
        for x, _ in loaded
    ]
    return {
        "data": sparse.vstack(blocks).tocsr(),
        "label": np.concatenate([y for _, y in loaded]),
        "weight": None,
    }


def read_parquet(files: list[Path]) -> dict[str, Any]:
    """Parquet files (label in the first column); needs pyarrow, which may be absent."""
    if importlib.util.find_spec("pyarrow") is None:
        raise UserError(
            "localcloud cannot read parquet input: the pyarrow package is not "
            "installed in this environment. Use text/csv or text/libsvm."
        )
    import pandas as pd

    table = pd.concat([pd.read_parquet(f) for f in files]).to_numpy(dtype="float64")
    return {"data": table[:, 1:], "label": table[:, 0], "weight": None}


def load(
    channel: str, path: Path, config: dict[str, str], csv_weights: bool, log: Any
) -> dict[str, Any] | None:
    """The arrays of one channel, or None when the channel folder holds no file."""
    kind = content_format(channel, config)
    files = channel_files(path)
    if not files:
        return None
    if kind == "csv":
        delimiter = csv_delimiter(files[0])
        log(f"Determined delimiter of CSV input is '{delimiter}'")
        return read_csv(files, delimiter, csv_weights)
    if kind == "libsvm":
        return read_libsvm(files)
    if kind == "parquet":
        return read_parquet(files)
    raise UserError(
        "localcloud does not support the recordio-protobuf content type for the "
        "built-in XGBoost; use text/csv or text/libsvm."
    )
