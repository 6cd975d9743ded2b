"""The seed lesson's own SDK v2 cells, as published, run against localcloud.

The course teaches SDK v3, but learners (and instructors) still meet the Carpentries episode the
course grew from (../shared/reference/seed-episode-training-models-in-sagemaker.md). Its training
cells are taken from the Markdown as written and executed in one namespace; only what cannot
exist here is replaced: the git clone of its scripts (our scripts/ keep the lesson's CLI), the
bucket it assumes, and 10,000 epochs (5 here). Cells that need the seed's own notebook instance,
IPython magics or its helper repository are skipped, and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.localcloud
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "reference" / "seed-episode-training-models-in-sagemaker.md"
# block number (1-based, in the order of the ```python fences) -> why it is not run here
SKIPPED = {
    4: "IPython magic (!pwd)",
    5: "IPython magic (%cd)",
    6: "git clone of the seed's scripts: scripts/ stands in for them",
    7: "describes the seed's own notebook instance 'Titanic-ML-Notebook'",
    8: "imports the seed's helper repository",
    9: "pip install",
    10: "%run of the script on the notebook itself",
    11: "an illustration: SKLearn is never imported in the lesson",
    15: "imports the seed's helper repository",
    16: "loads the seed script's joblib model; ours saves XGBoost's JSON format",
    17: "a bare expression",
    22: "%run of the script on the notebook itself",
}
BUCKET = "titanic-dataset-test"


def seed_blocks() -> list[str]:
    """The ```python blocks of the seed episode, in order."""
    return re.findall(r"```python\n(.*?)```", SEED.read_text(), flags=re.S)


def _prepared(number: int, code: str) -> str:
    code = code.replace("test_AWS/scripts", "scripts")
    return re.sub(r"^epochs = 10000$", "epochs = 5", code, flags=re.M)


@pytest.mark.skipif(not SEED.is_file(), reason="the seed lesson is not beside this checkout")
def test_the_seed_lessons_v2_training_cells_run(
    localcloud_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = seed_blocks()
    assert len(blocks) == 26, "the seed lesson changed: review SKIPPED"
    s3 = localcloud_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for name in ("titanic_train.csv", "titanic_test.csv"):
        s3.upload_file(str(ROOT / "data" / name), BUCKET, f"data/{name}")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", localcloud_server.region)
    # block 10 is skipped (a %run) but its first line, `import time as t`, is used later
    namespace: dict[str, Any] = {"__name__": "seed_lesson", "t": time}
    ran = []
    for number, code in enumerate(blocks, 1):
        if number in SKIPPED:
            continue
        exec(compile(_prepared(number, code), f"<seed block {number}>", "exec"), namespace)
        ran.append(number)
    assert ran == [1, 2, 3, 12, 13, 14, 18, 19, 20, 21, 23, 24, 25, 26]
    sm = localcloud_server.client("sagemaker")
    jobs = sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    statuses = {j["TrainingJobName"]: j["TrainingJobStatus"] for j in jobs}
    names = [
        namespace["xgboost_estimator_builtin"].latest_training_job.name,
        namespace["xgboost_estimator"].latest_training_job.name,
        namespace["pytorch_estimator_gpu"].latest_training_job.name,
        namespace["pytorch_estimator"].latest_training_job.name,
    ]
    assert all(statuses[n] == "Completed" for n in names), statuses
    assert os.path.exists(tmp_path / "xgboost-model.json") or list(tmp_path.iterdir())
