"""Run the whole course offline and render it as a site a learner can read."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
FAST_PARAMS = ROOT / "tests" / "notebook_params.json"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
COURSE_TITLE = "Training models on Amazon SageMaker: the Titanic course"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
# What a run leaves in its output folder for `course site` (written by run, read by site).
RUN_FILE = "run.json"
JOBS_FILE = "jobs.csv"
