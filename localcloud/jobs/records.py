"""Training-job records on disk: one JSON document per job, written atomically, read at start.

Why JSON files and not a database: a record is small, written a handful of times in a job's life
and read once at start; a write-then-rename keeps each file old or new through a crash, and a
learner can read them. The folder is `<state folder>/records/`, apart from the job folders that
`localcloud clean` removes, so a record outlives its job folder as a SageMaker job outlives its
instances.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from localcloud.jobs.model import MESSAGES, TrainingJob
from localcloud.jobs.validation import NAME_PATTERN

FOLDER = "records"
LOST_REASON = (
    "localcloud stopped while the job was running (the server was stopped or crashed, or the "
    "machine restarted); its hosts were ended. Start the job again."
)
# what a record keeps besides the request; derived fields (metric rules) are rebuilt
_FIELDS = (
    "creation_time",
    "status",
    "secondary_status",
    "transitions",
    "last_modified",
    "training_start",
    "training_end",
    "failure_reason",
    "model_uri",
    "metrics",
    "tags",
)


def _path(folder: Path, name: str) -> Path:
    import re

    if not re.fullmatch(NAME_PATTERN, name):  # validated at CreateTrainingJob; proven again here
        raise ValueError(f"not a training job name: {name!r}")
    return folder / f"{name}.json"


def to_document(job: TrainingJob) -> dict[str, Any]:
    """Everything needed to answer for the job again after a restart."""
    return {
        "request": job.request,
        "region": job.region,
        "account": job.account,
        **{name: getattr(job, name) for name in _FIELDS},
    }


def from_document(document: dict[str, Any]) -> TrainingJob:
    """The job a document describes, as it was when it was written."""
    job = TrainingJob(
        request=document["request"], region=document["region"], account=document["account"]
    )
    for name in _FIELDS:
        setattr(job, name, document[name])
    return job


def dumps(job: TrainingJob) -> str:
    """The record's text (take it under the manager's lock: a consistent snapshot)."""
    return json.dumps(to_document(job), default=str)


def write(folder: Path, name: str, text: str) -> None:
    """Write one record: to a temporary file, flushed, then renamed over the old one."""
    folder.mkdir(parents=True, exist_ok=True)
    target = _path(folder, name)
    tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def remove(folder: Path, name: str) -> None:
    """Forget one job (DeleteTrainingJob)."""
    _path(folder, name).unlink(missing_ok=True)


def load_all(folder: Path) -> tuple[list[TrainingJob], list[str]]:
    """(every readable record, oldest first; the names of files that could not be read)."""
    jobs, unreadable = [], []
    if not folder.is_dir():
        return jobs, unreadable
    for path in sorted(folder.glob("*.json")):
        try:
            jobs.append(from_document(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(path.name)
    jobs.sort(key=lambda job: job.creation_time)
    return jobs, unreadable


def mark_lost(job: TrainingJob, now: float | None = None) -> bool:
    """A job that was not over when its server went away ends Failed, saying why; True if so."""
    if job.terminal:
        return False
    now = time.time() if now is None else now
    job.failure_reason = LOST_REASON
    job.training_end = job.training_end or (now if job.training_start else None)
    job.finish("Failed", "Failed", now)
    job.transitions[-1]["StatusMessage"] = MESSAGES["Failed"] + ": " + LOST_REASON
    return True
