"""Executors run the jobs they are handed, in order, and know nothing of them; the config's one coercion."""

import os

import pytest

from vidstudy import executor as executors
from vidstudy.config import ModelConfig, RunConfig, apply_overrides, coerce, preset
from vidstudy.errors import ParameterError
from vidstudy.executor import LocalExecutor, RayExecutor, from_options, max_workers
from vidstudy.models import check_model_config


def _double(x):
    return 2 * x


def _pid_and_square(x):
    return os.getpid(), x * x


class _Counter:
    """A worker that counts its calls: ``(pid, value)`` -> ``(pid, value + 1000 * calls)``."""

    def __init__(self):
        self.calls = 0

    def __call__(self, decoded):
        self.calls += 1
        pid, value = decoded
        return pid, value + 1000 * self.calls


def test_local_map_runs_each_job_in_order_here():
    assert LocalExecutor().map(lambda a, b: (a, b, os.getpid()), [(1, 2), (3, 4)]) == [(1, 2, os.getpid()),
                                                                                        (3, 4, os.getpid())]


@pytest.mark.parametrize("workers", [0, 1])
def test_local_stream_decodes_in_order_through_one_worker(workers):
    made = []

    def make_worker():
        made.append(_Counter())
        return made[-1]

    out = list(LocalExecutor(workers).stream(_pid_and_square, make_worker, list(range(5))))
    assert len(made) == 1  # one worker, built here
    assert [value for _, value in out] == [x * x + 1000 * (x + 1) for x in range(5)]  # every item, in order
    pids = {pid for pid, _ in out}
    assert (pids == {os.getpid()}) == (workers == 0)  # with workers, decoding ran in another process


def test_local_executor_refuses_workers_beyond_the_cpus():
    with pytest.raises(ParameterError, match=rf"^workers \(--workers\) must lie in \[0, {max_workers()}\]"):
        LocalExecutor(max_workers() + 1)


def test_ray_executor_checks_its_resources_before_joining(monkeypatch):
    with pytest.raises(ParameterError, match=r"cpus per member \(--cpus-per-member\) must be at least 1, got 0"):
        RayExecutor("local", cpus=0)
    with pytest.raises(ParameterError, match=r"gpus per member \(--gpus-per-member\) must lie in \[0, 8\], got 9"):
        RayExecutor("local", gpus=9)
    with pytest.raises(ParameterError, match="must be 'local' or a cluster address"):
        RayExecutor("")
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    with pytest.raises(ParameterError, match=r"^--ray needs Ray, which is not installed"):
        from_options("local")
    assert isinstance(from_options(None, workers=1), LocalExecutor) and from_options("", workers=1).workers == 1


def test_one_coercion_for_json_values_and_command_line_text():
    assert coerce(int, 3) == 3 and coerce(int, "3", text=True) == 3
    assert coerce(float, 2) == 2.0 and coerce(float, "3e-4", text=True) == 3e-4
    assert coerce(bool, "no", text=True) is False and coerce(bool, True) is True
    assert coerce(tuple[int, ...], [64, 32]) == (64, 32) == coerce(tuple[int, ...], "64,32", text=True)
    for typ, value in ((int, "3"), (int, True), (int, 3.0), (bool, 1), (str, 5), (tuple[int, ...], "64")):
        with pytest.raises(ValueError):
            coerce(typ, value)  # JSON and YAML values must have the field's type
    for typ, text in ((int, "3.5"), (bool, "maybe"), (tuple[int, ...], "6,x")):
        with pytest.raises(ValueError):
            coerce(typ, text, text=True)
    with pytest.raises(ParameterError, match=r"^config key model\.hidden_dim expects int, got 'wide'\.$"):
        apply_overrides(preset("cpu"), ["model.hidden_dim=wide"])
    with pytest.raises(ParameterError, match=r"key 'hidden_dim' must be int, got \"64\""):
        RunConfig.from_dict({"model": {"hidden_dim": "64"}})
    with pytest.raises(ParameterError, match=r"^preset must be one of paper, cpu, got 'gpu'\.$"):
        RunConfig.from_dict({"preset": "gpu"}).validate()  # a config.json naming a preset there is not


def test_the_attention_rule_belongs_to_the_temporal_model():
    check_model_config(ModelConfig(arch="temporal", hidden_dim=6, num_heads=4))  # 12 splits into 4 heads
    with pytest.raises(ParameterError, match=r"model\.num_heads \(5\) must divide the attention width 2 \* hidden_dim"):
        check_model_config(ModelConfig(arch="temporal", hidden_dim=6, num_heads=5))
    from vidstudy.models import family

    check_model_config(family("meanpool").sized("cpu", hidden_dim=6))  # no attention, no rule
    with pytest.raises(ParameterError, match="must divide"):
        apply_overrides(preset("cpu"), ["model.num_heads=5"]).validate()
