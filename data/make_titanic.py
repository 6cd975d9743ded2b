"""Rebuild the lesson's train/test split of the Titanic table, byte for byte.

Run from anywhere: ``python data/make_titanic.py``. The split is the lesson's own:
80/20, stratified on ``Survived``, ``random_state=42``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SOURCE_SHA256 = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"
EXPECTED_SHA256 = {
    "titanic_train.csv": "a7a05dc6ea379bb5ea22e71a3ef948955f71ae612f712d38f71ac03c48b6eba1",
    "titanic_test.csv": "d177a1620498f5e7f34b154c9a73eb8659c8bb57928a6e7c321fb22e508d3448",
}


def sha256(path: Path) -> str:
    """Hex digest of a file, to compare with the published hashes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split(source: Path, out_dir: Path) -> dict[str, Path]:
    """Write titanic_train.csv (712 rows) and titanic_test.csv (179 rows) into out_dir."""
    df = pd.read_csv(source)
    train, test = train_test_split(df, test_size=0.2, random_state=42, stratify=df["Survived"])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("titanic_train.csv", train), ("titanic_test.csv", test)):
        path = out_dir / name
        frame.to_csv(path, index=False, lineterminator="\n")
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=HERE / "titanic.csv")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args()
    for name, path in split(args.source, args.out_dir).items():
        digest = sha256(path)
        verdict = "ok" if digest == EXPECTED_SHA256[name] else "MISMATCH"
        print(f"{name}: {digest} {verdict}")
        if verdict != "ok":
            raise SystemExit(f"{name} does not match the lesson's file; check the source table")


if __name__ == "__main__":
    main()
