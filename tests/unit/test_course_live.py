"""`make live-check` runs only where real AWS can be reached, and always under the cost cap."""

from __future__ import annotations

import pytest

from course.live import LIVE_MAX_RUN_S, LIVE_NOTEBOOKS, live_options


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("LOCALCLOUD_ENDPOINT", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_refuses_without_credentials(no_aws, tmp_path, capsys) -> None:
    assert live_options(tmp_path) is None
    assert "needs AWS credentials" in capsys.readouterr().out


def test_refuses_inside_localcloud(no_aws, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("LOCALCLOUD_ENDPOINT", "http://127.0.0.1:1")
    assert live_options(tmp_path) is None
    assert "real AWS" in capsys.readouterr().out


def test_runs_three_lessons_capped(no_aws, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    opts = live_options(tmp_path)
    assert opts is not None and opts.only == LIVE_NOTEBOOKS
    assert opts.kernel == "python3" and not opts.use_localcloud
    assert opts.extra_params == {"max_run": LIVE_MAX_RUN_S}


def test_run_wide_parameters_reach_only_notebooks_that_declare_them(tmp_path) -> None:
    import nbformat

    from course.run import _declared

    with_cap, without = tmp_path / "02_a.ipynb", tmp_path / "00_b.ipynb"
    for path, source in ((with_cap, "max_run = 7200\nepochs = 3"), (without, "region = None")):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, path)
    assert _declared(with_cap, {"max_run": LIVE_MAX_RUN_S}) == {"max_run": LIVE_MAX_RUN_S}
    assert _declared(without, {"max_run": LIVE_MAX_RUN_S}) == {}
