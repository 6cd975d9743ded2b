"""SDK v3 ModelTrainer on localcloud: the course's XGBoost job vs its script run directly, and
a 2-host Torchrun job of the course network vs 1 host.

Usage: .venv/bin/python bench/bench_modeltrainer.py [--runs 3] [--epochs 20]
Prints medians and ratios measured in the same run, alternating the two sides; asserts nothing.
The goal for the script-mode job is at most 2x the direct run (issue 13).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the course's images (helpers/aws_reference.json), as image_uris.retrieve names them in us-east-1
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
PT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10-cpu-py313"
COURSE_PYTHON = sys.executable


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, InputData, SourceCode, StoppingCondition
    from sagemaker.train import ModelTrainer
    from sagemaker.train.distributed import Torchrun

    import localcloud
    from localcloud import control

    work = Path(tempfile.mkdtemp(prefix="bench-v3-"))
    home = work / "home"
    connection = localcloud.connect(home)
    try:
        session = Session(boto_session=connection.boto_session)
        bucket = session.default_bucket()
        csv = ROOT / "data" / "titanic_train.csv"
        train_csv = session.upload_data(str(csv), bucket, "bench/xgb")
        source = work / "src"
        source.mkdir()
        shutil.copy(ROOT / "scripts" / "train_xgboost.py", source)
        shutil.copy(ROOT / "scripts" / "train_nn.py", source)
        make = (
            "import sys; sys.path.insert(0, 'scripts'); import train_nn; "
            f"train_nn.prepare_npz('data/titanic_train.csv', {str(work / 'npz')!r})"
        )
        subprocess.run([COURSE_PYTHON, "-c", make], cwd=ROOT, check=True)
        nn_train = session.upload_data(str(work / "npz" / "train_data.npz"), bucket, "bench/nn/t")
        nn_val = session.upload_data(str(work / "npz" / "val_data.npz"), bucket, "bench/nn/v")

        def trainer(count: int = 1, **kwargs: object) -> ModelTrainer:
            return ModelTrainer(
                role=connection.role_arn,
                sagemaker_session=session,
                compute=Compute(instance_type="ml.m5.large", instance_count=count),
                stopping_condition=StoppingCondition(max_runtime_in_seconds=900),
                source_code=SourceCode(source_dir=str(source), entry_script=kwargs.pop("entry")),
                **kwargs,
            )

        def xgb_job() -> None:
            trainer(
                entry="train_xgboost.py",
                training_image=XGB_IMAGE,
                hyperparameters={"train": "titanic_train.csv"},
                input_data_config=[InputData(channel_name="train", data_source=train_csv)],
            ).train(wait=True, logs=False)

        def xgb_direct() -> None:
            out = work / "direct"
            out.mkdir(exist_ok=True)
            subprocess.run(
                [COURSE_PYTHON, "train_xgboost.py", "--train", str(csv), "--model_dir", str(out)],
                cwd=source,
                check=True,
                capture_output=True,
            )

        def nn_job(count: int) -> Callable[[], None]:
            return lambda: trainer(
                count,
                entry="train_nn.py",
                training_image=PT_IMAGE,
                distributed=Torchrun(),
                hyperparameters={
                    "epochs": args.epochs,
                    "train": "train_data.npz",
                    "val": "val_data.npz",
                },
                input_data_config=[
                    InputData(channel_name="train", data_source=nn_train),
                    InputData(channel_name="val", data_source=nn_val),
                ],
            ).train(wait=True, logs=False)

        xgb_direct()  # warm the page cache and xgboost's import once
        direct, managed, one, two = [], [], [], []
        for _ in range(args.runs):
            direct.append(timed(xgb_direct))
            managed.append(timed(xgb_job))
            one.append(timed(nn_job(1)))
            two.append(timed(nn_job(2)))
        d, m = statistics.median(direct), statistics.median(managed)
        o, t = statistics.median(one), statistics.median(two)
        print(f"runs={args.runs} (medians, seconds, measured offline on this machine)")
        print(f"train_xgboost.py run directly        {d:7.2f}")
        print(f"ModelTrainer script-mode train()     {m:7.2f}   ratio {m / d:4.2f}x (goal <= 2x)")
        print(f"Torchrun train_nn.py, 1 host, {args.epochs} ep  {o:7.2f}")
        print(f"Torchrun train_nn.py, 2 hosts        {t:7.2f}   ratio {t / o:4.2f}x of 1 host")
    finally:
        control.stop(home)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
