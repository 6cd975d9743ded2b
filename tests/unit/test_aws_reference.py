"""helpers/reference.py and helpers/aws_reference.json: every AWS figure is dated and sourced."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest

from helpers import reference
from helpers.costs import load_prices
from helpers.session import HelperError

TABLE = reference.load_reference()
AS_OF = date.fromisoformat(TABLE["as_of"])


def test_file_is_dated_and_every_figure_has_value_unit_source_and_date() -> None:
    assert AS_OF == date(2026, 12, 1) == reference.as_of()
    assert TABLE["note"]
    for key, entry in TABLE["figures"].items():
        assert set(reference.FIGURE_FIELDS) <= set(entry), key
        assert entry["source"].strip() and entry["what"].strip() and entry["unit"].strip(), key
        assert entry["measured"].startswith("AWS"), key
        assert date.fromisoformat(entry["date"]) <= AS_OF, key
        value = entry["value"]
        if isinstance(value, list):
            assert len(value) == 2 and 0 <= value[0] < value[1], key
        else:
            assert isinstance(value, int | float) and value > 0, key


def test_the_figures_the_course_quotes_are_there() -> None:
    figures = TABLE["figures"]
    assert figures["seed_xgb_1x_billed_s"]["value"] == 130
    assert figures["seed_xgb_2x_billed_s"]["value"] == 270
    assert round(figures["seed_xgb_1x_wall_s"]["value"]) == 198
    assert round(figures["seed_xgb_2x_wall_s"]["value"]) == 198
    assert figures["job_startup_wait"]["value"] == [120, 240]
    for notebook in (
        "02_managed_xgboost",
        "03_builtin_xgboost",
        "04_distributed_xgboost",
        "05_pytorch_cpu",
        "06_pytorch_gpu",
        "07_pytorch_multi_instance",
        "08_monitor_and_clean_up",
    ):
        assert f"aws_wait_{notebook}" in figures
    for key in ("seed_nn_cpu_billed_s", "seed_nn_gpu_billed_s", "seed_nn_2x_billed_s"):
        assert "seed lesson run" in figures[key]["measured"]


def test_computed_costs_follow_prices_json_and_the_seed_seconds() -> None:
    """A change to prices.json or to a seed figure shows up here, not in a lesson."""
    prices = load_prices()["training"]
    figures = {key: entry["value"] for key, entry in TABLE["figures"].items()}
    pairs = {
        "cost_m5_large_job": ("ml.m5.large", figures["seed_xgb_1x_billed_s"]),
        "cost_m5_large_2x_job": ("ml.m5.large", figures["seed_xgb_2x_billed_s"]),
        "cost_g4dn_xlarge_job": ("ml.g4dn.xlarge", figures["seed_nn_gpu_billed_s"]),
        "cost_m5_xlarge_2x_job": ("ml.m5.xlarge", figures["seed_nn_2x_billed_s"]),
    }
    for key, (instance_type, seconds) in pairs.items():
        assert figures[key] == round(prices[instance_type] * seconds / 3600, 4), key
    course = (1735 * prices["ml.m5.large"] + 350 * prices["ml.g4dn.xlarge"]) / 3600
    low, high = figures["course_aws_compute_cost"]
    assert low <= course <= high
    assert figures["seed_xgb_2x_billed_ratio"] == round(270 / 130, 2)
    assert math.isclose(figures["seed_xgb_2x_wall_ratio"], 197.66 / 198.04, abs_tol=5e-4)


def test_labels_and_side_by_side() -> None:
    billed = reference.aws_figure("seed_xgb_2x_billed_s")
    assert billed.value == 270.0 and billed.unit == "s billed"
    assert billed.label == "on AWS (seed lesson run, 2024-11-03): 270 s billed"
    assert reference.side_by_side(4, "seed_xgb_1x_billed_s") == (
        "offline (localcloud, this machine): 4 s billed"
        " · on AWS (seed lesson run, 2024-11-03): 130 s billed"
    )
    assert reference.side_by_side(0.0023, "course_aws_compute_cost", ".4f") == (
        "offline (localcloud, this machine): $0.0023 · on AWS (computed: prices.json × seed"
        " lesson run, 2026-12-01): $0.10–0.20"
    )
    assert reference.side_by_side(5.42, "job_startup_wait", ".1f").endswith(
        "5.4 s · on AWS (seed lesson run, 2024-11-03): 120–240 s"
    )
    assert reference.aws_figure("aws_wait_08_monitor_and_clean_up").where == (
        "AWS (unverified estimate, 2026-12-01)"
    )


def test_a_missing_figure_raises_helper_error() -> None:
    assert reference.aws_figure("seed_xgb_1x_wall_s").value == 198.04
    with pytest.raises(HelperError, match="no AWS reference figure 'seed_xgb_3x_wall_s'"):
        reference.aws_figure("seed_xgb_3x_wall_s")
    with pytest.raises(HelperError, match="'seed_xgb_3x_wall_s'"):
        reference.side_by_side(1.0, "seed_xgb_3x_wall_s")


def test_a_figure_without_a_source_is_refused(tmp_path: Path) -> None:
    copy = json.loads(reference.REFERENCE_FILE.read_text())
    good = tmp_path / "good.json"
    good.write_text(json.dumps(copy))
    assert reference.aws_figure("seed_xgb_1x_billed_s", good).source
    del copy["figures"]["seed_xgb_1x_billed_s"]["source"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(copy))
    with pytest.raises(HelperError, match=r"lacks \['source'\]"):
        reference.aws_figure("seed_xgb_1x_billed_s", bad)


def test_a_broken_file_is_refused(tmp_path: Path) -> None:
    copy = json.loads(reference.REFERENCE_FILE.read_text())
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(copy))
    assert reference.load_reference(whole)["chosen"] == TABLE["chosen"]
    del copy["images"]
    part = tmp_path / "part.json"
    part.write_text(json.dumps(copy))
    with pytest.raises(HelperError, match="has no 'images'"):
        reference.load_reference(part)
    with pytest.raises(HelperError, match="cannot read"):
        reference.load_reference(tmp_path / "missing.json")


def test_chosen_images_are_in_support_on_the_file_date_and_old_ones_are_not() -> None:
    chosen = TABLE["chosen"]
    assert reference.image_support("xgboost", chosen["xgboost"]) > AS_OF
    pytorch = chosen["pytorch"]
    assert reference.image_support("pytorch", pytorch["framework_version"]) > AS_OF
    entry = reference.image_entry("pytorch", pytorch["framework_version"])
    assert entry["py_version"] == pytorch["py_version"] and entry["processor"] == ["cpu", "gpu"]
    assert reference.in_support("pytorch", "2.10.0") and reference.in_support("xgboost", "3.2-0")
    # negative controls: the versions the course used before, each out of its window
    assert reference.image_support("pytorch", "2.1") == date(2024, 10, 4)
    assert not reference.in_support("pytorch", "2.1")
    assert reference.image_support("xgboost", "3.0-5") == date(2026, 11, 17)
    assert not reference.in_support("xgboost", "3.0-5")
    assert reference.in_support("xgboost", "3.0-5", on=date(2026, 11, 17))


def test_unknown_image_versions_raise_helper_error() -> None:
    assert reference.image_support("pytorch-training", "2.9") == date(2026, 10, 15)
    with pytest.raises(HelperError, match="no support date for pytorch '1.9'"):
        reference.image_support("pytorch", "1.9")
    with pytest.raises(HelperError, match="no images for 'tensorflow'"):
        reference.image_support("tensorflow", "2.19")
