"""Extraction and training on a Ray cluster (a local one: 2 CPUs, loopback, no dashboard, no usage statistics)."""

import json
import os
import sys

import pytest
import torch
from test_extract import SAMPLING, _colour_backbone, _same_file, video_tree  # noqa: F401 (a fixture)

from vidstudy import executor as executors
from vidstudy.cli import main
from vidstudy.config import build
from vidstudy.errors import ParameterError
from vidstudy.executor import RayExecutor
from vidstudy.extraction.extract import PARTIAL_DIR, REPORT_NAME, extract
from vidstudy.features import feature_file_name, load_splits
from vidstudy.train import train_ensemble


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for this module; the test helpers travel by value (workers cannot import tests/)."""
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    import test_extract

    ray.cloudpickle.register_pickle_by_value(test_extract)
    yield RayExecutor().connect()
    ray.shutdown()


@pytest.fixture(scope="module")
def local_files(video_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, extract(video_tree, out, backbone=_colour_backbone(), sampling=SAMPLING, progress=False)


def test_extraction_through_ray_equals_the_local_path_and_reports_bad_videos(ray_cluster, video_tree, local_files, tmp_path):
    local, local_report = local_files
    report = extract(video_tree, tmp_path, backbone=_colour_backbone(), sampling=SAMPLING, progress=False, executor=RayExecutor())
    for split in ("train", "val"):
        _same_file(tmp_path / feature_file_name(split), local / feature_file_name(split))  # arrays and attributes
        assert report["splits"][split]["skipped"] == local_report["splits"][split]["skipped"]
    assert sorted(s["video"].rsplit("/", 1)[1] for s in report["splits"]["train"]["skipped"]) == ["corrupt.avi", "empty.mp4"]
    assert json.loads((tmp_path / REPORT_NAME).read_text())["splits"]["train"]["videos_written"] == 4
    assert not (tmp_path / PARTIAL_DIR).exists()


class _Stopping:
    """The colour backbone, failing on its ``fail_at``-th call (a job stopped halfway)."""

    def __init__(self, fail_at):
        self.inner, self.fail_at, self.calls = _colour_backbone(), fail_at, 0
        self.name, self.input_size = self.inner.name, self.inner.input_size

    def __call__(self, frames):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("stopped halfway")
        return self.inner(frames)


def test_a_job_stopped_halfway_resumes_the_finished_videos_and_gives_the_same_file(ray_cluster, video_tree, local_files,
                                                                                   tmp_path):
    with pytest.raises(ParameterError, match=r"^the backbone mean-colour failed .*\(RuntimeError: stopped halfway\)\.$"):
        extract(video_tree, tmp_path, backbone=_Stopping(fail_at=3), sampling=SAMPLING, progress=False, executor=RayExecutor())
    assert not (tmp_path / feature_file_name("train")).exists()
    done = len(list((tmp_path / PARTIAL_DIR / "train").glob("*.npy")))
    assert done == 2  # the videos before the failing call
    report = extract(video_tree, tmp_path, backbone=_colour_backbone(), sampling=SAMPLING, progress=False, executor=RayExecutor())
    assert report["splits"]["train"]["resumed"] >= done
    for split in ("train", "val"):
        _same_file(tmp_path / feature_file_name(split), local_files[0] / feature_file_name(split))


def _weights(run):
    return [torch.load(p, weights_only=True)["model_state"] for p in sorted(run.glob("members/*/best.pt"))]


def test_members_through_ray_equal_members_trained_here_with_as_many_threads(ray_cluster, smoke_dir, tmp_path):
    files = load_splits(smoke_dir, ("train", "val"))
    config = build("cpu", members=2, epochs=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the members' tasks declare one CPU each, so torch runs one thread there
    try:
        here = train_ensemble(config, files["train"], files["val"], tmp_path / "here", plots=False, quiet=True, device="cpu")
    finally:
        torch.set_num_threads(threads)
    there = train_ensemble(config, files["train"], files["val"], tmp_path / "ray", plots=False, quiet=True,
                           executor=RayExecutor(cpus=1))
    a, b = _weights(tmp_path / "here"), _weights(tmp_path / "ray")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    drop = ("wall_time_s", "device")
    assert [{k: v for k, v in s.items() if k not in drop} for s in here] == \
        [{k: v for k, v in s.items() if k not in drop} for s in there]
    assert json.loads((tmp_path / "ray" / "members_summary.json").read_text())[1]["seed"] == config.seed_base + 1
    # the same run resumed through Ray trains nothing
    again = train_ensemble(config, files["train"], files["val"], tmp_path / "ray", resume=True, plots=False, quiet=True,
                           executor=RayExecutor())
    assert [s["wall_time_s"] for s in again] == [s["wall_time_s"] for s in there]


def _pid():
    return os.getpid()


class _Counting(RayExecutor):
    """A Ray executor that counts the jobs handed to it."""

    jobs = 0

    def map(self, fn, jobs):
        jobs = list(jobs)
        self.jobs += len(jobs)
        return super().map(fn, jobs)


def test_members_run_as_ray_tasks_in_other_processes(ray_cluster, smoke_dir, tmp_path):
    pids = RayExecutor(cpus=1).map(_pid, [(), ()])
    assert len(pids) == 2 and os.getpid() not in pids  # a job is a task, not a call in the driver
    files = load_splits(smoke_dir, ("train", "val"))
    counting = _Counting(cpus=1)
    summaries = train_ensemble(build("cpu", members=2, epochs=1), files["train"], files["val"], tmp_path / "run",
                               plots=False, quiet=True, executor=counting)
    assert counting.jobs == 2 and [s["torch_threads"] for s in summaries] == [1, 1]  # as many threads as CPUs declared


def test_a_failing_member_task_is_one_sentence_and_the_unstarted_run_is_forgotten(ray_cluster, smoke_dir, tmp_path):
    files = load_splits(smoke_dir, ("train", "val"))
    config = build("cpu", members=2, epochs=1)
    with pytest.raises(ParameterError, match="^device cuda: this machine has no CUDA GPU"):  # raised in the task
        train_ensemble(config, files["train"], files["val"], tmp_path / "run", plots=False, quiet=True,
                       executor=RayExecutor(), device="cuda")
    assert not (tmp_path / "run").exists()


def test_ray_without_the_extra_is_one_line_and_writes_nothing(monkeypatch, smoke_dir, tmp_path, capsys):
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    for argv in (["train", str(smoke_dir), str(tmp_path / "run"), "--ray"],
                 ["extract", str(tmp_path / "videos"), str(tmp_path / "out"), "--ray", "10.0.0.1:6379"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err == "vidstudy: error: --ray needs Ray, which is not installed: pip install 'vidstudy[ray]'.", err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("address", ["127.0.0.1:1", "not-a-host.invalid:6379"])
def test_an_address_where_no_ray_head_listens_is_one_line_and_writes_nothing(smoke_dir, tmp_path, capsys, address):
    assert main(["train", str(smoke_dir), str(tmp_path / "run"), "--members", "1", "--epochs", "1", "--ray", address]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"vidstudy: error: --ray {address}: cannot join a Ray cluster "
                                                         f"there (nothing answers at {address}"), err
    assert not (tmp_path / "run").exists()


def test_resources_per_member_on_the_command_line(ray_cluster, smoke_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(smoke_dir), str(run), "--members", "1", "--epochs", "1", "--quiet", "--no-plots",
                 "--ray", "--cpus-per-member", str(min(2, os.cpu_count()))]) == 0
    summary = json.loads((run / "members" / "ensemble_model_0" / "summary.json").read_text())
    assert summary["torch_threads"] == min(2, os.cpu_count())  # the task ran as many threads as CPUs it declared
    for option, value in (("--gpus-per-member", "0.5"), ("--cpus-per-member", str(os.cpu_count() + 1))):
        assert main(["train", str(smoke_dir), str(tmp_path / "more"), "--members", "1", "--epochs", "1", "--quiet",
                     "--no-plots", "--ray", option, value]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"but the Ray cluster at local has {os.cpu_count()} CPUs and 0 GPUs." in err[0], err
        assert not (tmp_path / "more").exists()


def test_an_import_through_ray_equals_the_local_one_byte_for_byte(ray_cluster, tmp_path):
    from test_yt8m import write_mini_yt8m

    from vidstudy.yt8m.importer import import_yt8m

    write_mini_yt8m(tmp_path / "in", train=3, validate=4)
    local = import_yt8m([tmp_path / "in"], tmp_path / "local", progress=False)
    remote = import_yt8m([tmp_path / "in"], tmp_path / "ray", executor=RayExecutor(), progress=False)
    for split in ("train", "val", "test"):
        name = feature_file_name(split)
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), split
    assert [{k: f[k] for k in ("records", "kept", "dropped")} for f in remote["files"]] == \
        [{k: f[k] for k in ("records", "kept", "dropped")} for f in local["files"]]
