"""The engine: local processes and a real local Ray instance give the same output as one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datakit.engine import Job, run_jobs, threads_per_worker
from datakit.errors import DatakitError, InputError
from datakit.store import read_manifest
from datakit.synth.build import synth_dataset

HDRI = Path(__file__).parent / "data" / "hdri"
RECIPE = """
[recipe]
name = "engine-unit"
kind = "synthetic"
[clips]
lengths = [3]
per_source = 1
tile = 48
[ranges.codec]
preset = ["ultrafast"]
"""


def failing_job(message: str) -> dict:
    raise InputError(message)


def crashing_job() -> dict:
    return {"value": 1 / 0}


def test_failures_become_statuses_in_order():
    jobs = [
        Job("a", failing_job, ("bad input",)),
        Job("b", crashing_job),
        Job("c", dict, kwargs={"source_id": "c", "state": "done"}),
    ]
    results = run_jobs(jobs, workers=1)
    assert [r["source_id"] for r in results] == ["a", "b", "c"]
    assert results[0] == {"source_id": "a", "state": "failed", "error": "bad input"}
    assert results[1]["state"] == "failed" and "ZeroDivisionError" in results[1]["error"]
    assert "traceback" in results[1]
    assert results[2]["state"] == "done"


def test_bad_engine_arguments():
    with pytest.raises(DatakitError, match="engine"):
        run_jobs([], engine="spark")
    with pytest.raises(DatakitError, match="workers"):
        run_jobs([], workers=0)
    assert threads_per_worker(64) == 1


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("engine_images")
    for name in ("sunrise", "courtyard", "studio"):
        shutil.copy(HDRI / f"{name}.exr", folder)
    return folder


def test_process_pool_and_ray_match_one_process(images, tmp_path):
    pytest.importorskip("ray")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    one = synth_dataset(recipe, tmp_path / "one", images=str(images), report=False)
    pool = synth_dataset(recipe, tmp_path / "pool", images=str(images), workers=2, report=False)
    ray = synth_dataset(recipe, tmp_path / "ray", images=str(images), workers=2, engine="ray", report=False)
    assert one["samples"] == pool["samples"] == ray["samples"] == 3
    hashes = [[r["content_hash"] for r in read_manifest(tmp_path / name)] for name in ("one", "pool", "ray")]
    assert hashes[0] == hashes[1] == hashes[2]
