"""Hostile but fair input: every bad option, file and run file ends in one line, and nothing it leaves behind
changes what the next command does.

The checks share one tiny run (smoke data, one member, one epoch). Each case asserts the exit status 1, one
line on stderr that starts with ``vidstudy: error:`` (no traceback), and where it matters that nothing was
written and that the same command with good input then succeeds.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import original_arrays, tree_digest, write_plain_h5

from vidstudy.cli import main
from vidstudy.errors import ParameterError
from vidstudy.features import STUDY_CATEGORIES, feature_file_name, write_feature_file
from vidstudy.simulate import simulate

TRAIN = ["--members", "1", "--epochs", "1", "--quiet", "--no-plots"]


def one_line_error(capsys, argv, *needles) -> str:
    """Run the CLI in this process; assert exit 1 and exactly one ``vidstudy: error:`` line holding ``needles``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("vidstudy: warning:")]
    assert rc == 1, err
    assert len(lines) == 1 and lines[0].startswith("vidstudy: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


# --- options and config fields ------------------------------------------------------------------------------

BAD_FIELDS = [
    ("train.lr=inf", "train.lr must lie in (0, 10]"), ("train.lr=nan", "train.lr"), ("train.lr=0", "train.lr"),
    ("train.lr=-1", "train.lr"), ("train.focal_gamma=nan", "train.focal_gamma"), ("train.grad_clip=nan", "train.grad_clip"),
    ("train.grad_clip=-1", "train.grad_clip"), ("train.grad_clip=0", "train.grad_clip"), ("train.min_lr=-1", "train.min_lr"),
    ("train.min_lr=1", "train.min_lr (1.0) must not exceed train.lr"), ("train.warmup_epochs=-1", "train.warmup_epochs"),
    ("train.weight_clip=5,1", "LOW <= HIGH"), ("train.weight_clip=nan,nan", "train.weight_clip"),
    ("train.weight_clip=1", "train.weight_clip must be two numbers"), ("model.head_dims=0", "model.head_dims"),
    ("model.head_dims=", "model.head_dims must name at least one"), ("train.restart_t0=0", "train.restart_t0"),
    ("train.restart_t_mult=0", "train.restart_t_mult"), ("model.hidden_dim=1000000000000", "model.hidden_dim"),
    ("model.hidden_dim=0", "model.hidden_dim"), ("model.num_heads=0", "model.num_heads"), ("model.num_heads=7", "must divide"),
    ("model.num_lstm_layers=0", "model.num_lstm_layers"), ("model.dropout=1", "model.dropout"),
    ("model.dropout=nan", "model.dropout"), ("train.label_smoothing=1", "train.label_smoothing"),
    ("train.batch_size=0", "train.batch_size"), ("train.patience=0", "train.patience"),
    ("train.num_workers=100000", "train.num_workers must lie in [0,"), ("train.weight_decay=-1", "train.weight_decay"),
    ("train.class_boost=1,1", "train.class_boost needs 4 numbers"), ("train.class_boost=0,1,1,1", "train.class_boost"),
    ("seed_base=-1", "seed_base"), ("train.schedule=sometimes", "train.schedule"),
    ("train.lr=fast", "expects float"), ("train.nope=1", "unknown config key"), ("lr", "must look like key=value"),
    ("preset=gpu", "the preset is chosen with --preset (paper, cpu), not set as a config key"),
]


@pytest.mark.parametrize("override,needle", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_config_field_is_refused_before_anything_is_written(smoke_dir, tmp_path, capsys, override, needle):
    target = tmp_path / "run"
    one_line_error(capsys, ["train", smoke_dir, target, *TRAIN, "--set", override], needle)
    assert not target.exists()


def test_bad_options_of_every_command(smoke_dir, run, tmp_path, capsys):
    out = tmp_path / "x"
    cases = [
        (["train", smoke_dir, out, *TRAIN, "--workers", "100000"], "train.num_workers must lie in [0,"),
        (["train", smoke_dir, out, "--members", "0"], "members must lie in [1, 1000]"),
        (["train", smoke_dir, out, "--epochs", "0"], "train.epochs"),
        (["train", smoke_dir, out, "--seed-base", "-4"], "seed_base"),
        (["train", smoke_dir, out, "--preset", "gpu"], "preset must be one of"),
        (["evaluate", run, "--bootstrap", "0"], "n_boot (--bootstrap) must lie in [1, 100000]"),
        (["evaluate", run, "--bootstrap", "1000000000"], "--bootstrap"),
        (["evaluate", run, "--subsequences", "-1"], "--subsequences"),
        (["predict", run, "--subsequences", "100000"], "--subsequences"),
        (["extract", tmp_path, out, "--frames", "0"], "--frames"),
        (["extract", tmp_path, out, "--frames", "1000000"], "--frames"),
        (["extract", tmp_path, out, "--batch-size", "0"], "--batch-size"),
        (["extract", tmp_path, out, "--workers", "100000"], "--workers"),
        (["extract", tmp_path, out, "--clip-width", "nan"], "--clip-width"),
        (["extract", tmp_path, out, "--backbone", "json:dumps"], "the factory must accept device="),
        (["extract", tmp_path, out, "--backbone", "json:nope"], "cannot be loaded"),
        (["extract", tmp_path, out, "--backbone", "json"], "MODULE:FACTORY"),
        (["simulate", out, "--seed", "-1"], "seed must be a non-negative integer"),
        (["probe", tmp_path], "feature file does not exist"),
    ]
    for argv, needle in cases:
        one_line_error(capsys, argv, needle)
    assert not out.exists()


def test_book_parameter_files_are_checked_before_anything_runs(tmp_path):
    from vidstudy.study.book import resolve_params

    cases = {"unbalanced.yaml": ("members: [1, 2\n", "not valid YAML"),
             "tag.yaml": ("members: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
             "latin1.yaml": (b"run_dir: caf\xe9\n", "not a UTF-8 text file"),
             "list.yaml": ("- members\n", "must be a YAML mapping"),
             "unknown.yaml": ("memebrs: 3\n", "unknown chapter parameters"),
             "type.yaml": ("members: four\n", "parameter members must be int"),
             "bool.yaml": ("epochs: true\n", "parameter epochs must be int"),
             "range.yaml": ("members: 0\n", "members must lie in"),
             "preset.yaml": ("preset: gpu\n", "preset must be one of"),
             "epochs.yaml": ("epochs: -2\n", "epochs")}
    for name, (text, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ParameterError, match=None) as info:
            resolve_params(path)
        assert needle in str(info.value) and "\n" not in str(info.value), (name, str(info.value))


# --- feature files --------------------------------------------------------------------------------------------

def _damaged_chunk(path: Path) -> None:
    """Overwrite bytes in the middle of the (compressed) features data."""
    with h5py.File(path, "r") as f:
        offset = f["features"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + 16)
        fh.write(np.random.default_rng(0).bytes(256))


MALFORMED_FILES = {
    "feature_dim_string": ({"attrs": {"feature_dim": "wide"}}, "attribute 'feature_dim' must be an integer"),
    "feature_dim_nan": ({"attrs": {"feature_dim": float("nan")}}, "attribute 'feature_dim' must be an integer"),
    "num_videos_array": ({"attrs": {"num_videos": np.array([1, 2])}}, "attribute 'num_videos' must be an integer"),
    "max_frames_wrong": ({"attrs": {"max_frames": 5}}, "attribute 'max_frames' is 5"),
    "multi_scale_string": ({"attrs": {"multi_scale": "no"}}, "attribute 'multi_scale' must be true or false"),
    "multi_scale_two": ({"attrs": {"multi_scale": 2}}, "attribute 'multi_scale' must be true or false"),
    "zero_dim": ({"features": np.zeros((8, 6, 0), np.float32)}, "T and D must be at least 1"),
    "zero_steps": ({"features": np.zeros((8, 0, 4), np.float32), "num_frames": np.zeros(8, np.int32)},
                   "T and D must be at least 1"),
    "beyond_float32": ({"features": np.full((8, 6, 4), 1e300)}, "NaN or infinite"),
    "subcategories_2d": ({"subcategories": np.array([["a", "b"]] * 8, dtype="S1")}, "dataset 'subcategories' has rank 2"),
    "video_ids_not_utf8": ({"video_ids": np.array([b"\xff\xfe"] * 8, dtype="S2")}, "dataset 'video_ids' must hold UTF-8"),
    "labels_float": ({"labels": np.zeros(8)}, "dataset 'labels' has dtype float64"),
    "features_int": ({"features": np.ones((8, 6, 4), np.int32)}, "dataset 'features' has dtype int32"),
    "num_frames_zero": ({"num_frames": np.zeros(8, np.int32)}, "outside 1..6"),
    "mapping_gap": ({"attrs": {"category_mapping": json.dumps({"a": 0, "b": 2})}}, "one-to-one"),
    "mapping_list": ({"attrs": {"category_mapping": "[1, 2]"}}, "must be a non-empty JSON object"),
    "labels_out_of_range": ({"labels": np.full(8, 9)}, "outside the category mapping"),
    "simulation_not_json": ({"attrs": {"simulation": "{oops"}}, "attribute 'simulation' is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FILES))
def test_malformed_feature_file_is_one_line_naming_it(tmp_path, capsys, case):
    spec, needle = MALFORMED_FILES[case]
    spec = dict(spec)
    arrays = original_arrays(n=8, t=6, d=4)
    for key in ("features", "labels", "num_frames", "subcategories", "video_ids"):
        if key in spec:
            arrays[key] = spec.pop(key)
    path = write_plain_h5(tmp_path / "bad.h5", arrays, **spec)
    line = one_line_error(capsys, ["inspect", path], needle)
    assert line.startswith(f"vidstudy: error: {path}: ")


def test_damaged_hdf5_chunk_names_the_file(tmp_path, capsys):
    path = write_plain_h5(tmp_path / "bad.h5", original_arrays(n=8, t=6, d=4))
    _damaged_chunk(path)
    one_line_error(capsys, ["inspect", path], f"{path}: cannot be read, the file is damaged")


def test_truncated_and_foreign_files(tmp_path, capsys):
    good = write_plain_h5(tmp_path / "good.h5", original_arrays(n=8, t=6, d=4))
    data = good.read_bytes()
    for name, content in (("half.h5", data[: len(data) // 2]), ("empty.h5", b""), ("text.h5", b"videos\n"),
                          ("random.h5", os.urandom(4096))):
        (tmp_path / name).write_bytes(content)
        one_line_error(capsys, ["inspect", tmp_path / name], str(tmp_path / name))


# --- run folders ----------------------------------------------------------------------------------------------

def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


RUN_DAMAGE = {
    "best_truncated": ("members/ensemble_model_0/best.pt", lambda b: b[: len(b) // 3], "not a readable checkpoint"),
    "best_empty": ("members/ensemble_model_0/best.pt", lambda b: b"", "not a readable checkpoint"),
    "best_text": ("members/ensemble_model_0/best.pt", lambda b: b"weights\n", "not a readable checkpoint"),
    "best_random": ("members/ensemble_model_0/best.pt", lambda b: os.urandom(2048), "not a readable checkpoint"),
    "config_garbage": ("config.json", lambda b: b"{members: 1", "not valid JSON"),
    "config_list": ("config.json", lambda b: b"[1, 2]", "config.json"),
    "config_bad_value": ("config.json", lambda b: b.replace(b'"members": 1', b'"members": "one"'), "members"),
    "data_garbage": ("data.json", lambda b: b"\x00\x01", "data.json"),
    "data_empty_object": ("data.json", lambda b: b"{}", "data.json"),
    "summary_garbage": ("members/ensemble_model_0/summary.json", lambda b: b"nope", "summary.json"),
    "store_garbage": ("predictions/test.npz", lambda b: os.urandom(512), "test.npz"),
}


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_damaged_run_files_are_one_line(run, smoke_dir, tmp_path, capsys, case):
    rel, damage, needle = RUN_DAMAGE[case]
    target = _copy(run, tmp_path)
    path = target / rel
    good = path.read_bytes()
    path.write_bytes(damage(good))
    before = tree_digest(target)
    commands = {"config": [["predict", target], ["evaluate", target], ["train", smoke_dir, target, *TRAIN, "--resume"]],
                "data": [["predict", target], ["train", smoke_dir, target, *TRAIN, "--resume"]],
                "best": [["predict", target, "--force"], ["evaluate", target]],
                "summary": [["train", smoke_dir, target, *TRAIN, "--resume"]],
                "store": [["evaluate", target]]}[case.split("_")[0]]
    for argv in commands:
        one_line_error(capsys, argv, needle)
        assert tree_digest(target) == before, argv  # the failed command changed nothing
    path.write_bytes(good)
    for argv in commands:  # the same commands once the file is good again
        assert main([str(a) for a in argv]) == 0, (argv, capsys.readouterr().err)


def test_a_stray_member_folder_is_ignored(run, tmp_path, capsys):
    target = _copy(run, tmp_path)
    (target / "members" / "ensemble_model_x").mkdir()
    (target / "members" / "ensemble_model_x" / "best.pt").write_bytes(b"junk")
    assert main(["predict", str(target), "--force"]) == 0


def test_predict_that_fails_on_other_data_keeps_every_store(run, smoke_dir, tmp_path, capsys):
    other = tmp_path / "other"
    simulate(other, seed=3, shape="smoke")
    assert main(["predict", str(run), str(other)]) == 0
    before = tree_digest(run)
    narrow = tmp_path / "narrow"
    arrays = original_arrays(n=8, t=6, d=5)
    for split in ("train", "val", "test"):
        write_feature_file(narrow / feature_file_name(split), arrays["features"], arrays["labels"], arrays["num_frames"],
                           STUDY_CATEGORIES)
    one_line_error(capsys, ["predict", run, narrow], "feature dimension differ")
    assert tree_digest(run) == before


# --- valid input at its limits ----------------------------------------------------------------------------------

def test_one_frame_videos_work_in_every_view_and_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, n in (("train", 24), ("val", 16), ("test", 16)):
        nf = rng.integers(1, 5, n).astype(np.int32)
        nf[:4] = 1
        x = np.abs(rng.standard_normal((n, 4, 6))).astype(np.float32)
        x[np.arange(4)[None] >= nf[:, None]] = 0
        write_feature_file(data / feature_file_name(split), x, np.arange(n) % 4, nf, STUDY_CATEGORIES)
    run = tmp_path / "run"
    assert main(["train", str(data), str(run), *TRAIN, "--set", "model.hidden_dim=8", "--set", "model.num_heads=2"]) == 0
    assert main(["evaluate", str(run), "--bootstrap", "10", "--subsequences", "2"]) == 0
    assert main(["probe", str(data)]) == 0
    results = json.loads((run / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"results.json holds {c}"))
    assert set(results["per_view"]) == {"original", "reverse", "speed_up", "speed_down",
                                        "random_subsequence_0", "random_subsequence_1"}


def test_splits_too_small_to_fit_on_are_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    arrays = original_arrays(n=8, t=6, d=4)
    for split, n in (("train", 8), ("val", 4), ("test", 4)):  # one validation video per class
        write_feature_file(data / feature_file_name(split), arrays["features"][:n], arrays["labels"][:n],
                           arrays["num_frames"][:n], STUDY_CATEGORIES)
    run = tmp_path / "run"
    assert main(["train", str(data), str(run), *TRAIN]) == 0
    one_line_error(capsys, ["evaluate", run], "needs at least 2 videos of every class; Animation has 1")
    single = tmp_path / "single"
    one = {k: v[:1] for k, v in arrays.items()}
    for split in ("train", "val", "test"):
        write_feature_file(single / feature_file_name(split), one["features"], one["labels"], one["num_frames"],
                           STUDY_CATEGORIES)
    one_line_error(capsys, ["probe", single], "at least two classes")


def test_a_disk_that_fills_while_a_feature_file_is_written_is_one_line_naming_it(tmp_path):
    """The system refuses a write midway (here a file-size limit; a full disk is the same refusal to HDF5, whose
    library crashes the process at exit after one): one line naming the feature file, exit 1, nothing left in the
    folder, and the same command without the limit succeeds."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 2**10, 100 * 2**10))  # the train file needs about 230 KiB

    out = tmp_path / "data"
    argv = [sys.executable, "-m", "vidstudy.cli", "simulate", str(out), "--shape", "smoke"]
    proc = subprocess.run(argv, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.splitlines() == [f"vidstudy: error: {out / feature_file_name('train')}: File too large."]
    assert list(out.iterdir()) == []
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(feature_file_name(s) for s in ("train", "val", "test"))


def test_a_failed_start_leaves_no_run_and_the_good_command_then_works(smoke_dir, tmp_path, capsys):
    target = tmp_path / "run"
    other = tmp_path / "other"
    simulate(other, seed=0, shape="smoke")
    with h5py.File(other / feature_file_name("val"), "a") as f:  # classes renamed: train and val disagree
        f.attrs["category_mapping"] = json.dumps({"w": 0, "x": 1, "y": 2, "z": 3})
    shutil.copy(smoke_dir / feature_file_name("train"), other / feature_file_name("train"))
    one_line_error(capsys, ["train", other, target, *TRAIN], str(other))
    assert not target.exists()
    assert main(["train", str(smoke_dir), str(target), *TRAIN]) == 0


def test_diverging_training_stops_with_one_line_and_writes_no_nan(smoke_dir, tmp_path, capsys, monkeypatch):
    """The loss turns NaN in epoch 2 (after epoch 1 was recorded): one line, every file the member wrote is finite
    and holds epoch 1 only, and --resume (the fault gone) finishes the member from there."""
    import vidstudy.train as train_module

    state = {"validated": False, "poison": True}
    validate = train_module._validate

    def validate_then_poison(*args, **kwargs):
        state["validated"] = True
        return validate(*args, **kwargs)

    class DivergingLoss(train_module.FocalLoss):
        def forward(self, logits, targets):
            loss = super().forward(logits, targets)
            return loss * float("nan") if state["poison"] and state["validated"] and logits.requires_grad else loss

    monkeypatch.setattr(train_module, "_validate", validate_then_poison)
    monkeypatch.setattr(train_module, "FocalLoss", DivergingLoss)
    target = tmp_path / "run"
    argv = ["train", smoke_dir, target, *TRAIN, "--epochs", "3"]
    one_line_error(capsys, argv, "training diverged", "epoch 2")
    member = target / "members" / "ensemble_model_0"
    for path in target.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path} holds {c}"))
    history = json.loads((member / "history.json").read_text())
    assert len(history["train_loss"]) == 1 and not (member / "summary.json").exists()
    state["poison"] = False
    assert main([str(a) for a in argv + ["--resume"]]) == 0
    assert len(json.loads((member / "history.json").read_text())["train_loss"]) == 3


# --- kills at random points -----------------------------------------------------------------------------------

def _spawn(argv, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "vidstudy.cli", *map(str, argv)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _kill_after(proc, seconds: float) -> None:
    """SIGKILL the command and everything it started (its process group: a chapter's kernel too)."""
    time.sleep(seconds)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_kills_at_random_points_leave_nothing_that_misleads_the_rerun(run, smoke_dir, tmp_path):
    rng = random.Random(int(os.environ.get("VIDSTUDY_KILL_SEED", "0")))
    target = tmp_path / "run"
    for _ in range(2):  # train: killed, then resumed to the end
        _kill_after(_spawn(["train", smoke_dir, target, "--members", "2", "--epochs", "2", "--quiet", "--no-plots",
                            "--resume"]), rng.uniform(2.5, 6.0))
    assert main(["train", str(smoke_dir), str(target), "--members", "2", "--epochs", "2", "--quiet", "--no-plots",
                 "--resume"]) == 0
    for argv in (["predict", target, "--force"], ["evaluate", target, "--bootstrap", "20"]):
        _kill_after(_spawn(argv), rng.uniform(1.5, 4.0))
        for path in [target / "results.json", *(target / "predictions").glob("*.npz")]:  # complete, or absent
            if path.suffix == ".json" and path.exists():
                json.loads(path.read_text())
            elif path.exists():
                with np.load(path, allow_pickle=False) as z:
                    assert all(z[k].size >= 0 for k in z.files)  # every member of the archive reads back
        assert main([str(a) for a in argv if a != "--force"]) == 0  # the plain rerun rebuilds what it must
    from vidstudy.predictions import load_predictions

    assert load_predictions(target, "test").probs.shape[0] == 2  # a current store of both members


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_a_killed_extract_leaves_no_decoding_workers(tmp_path):
    from vidstudy.extraction.video import write_video

    frames = np.zeros((40, 32, 32, 3), np.uint8)
    for split in ("train",):
        for k in range(6):
            folder = tmp_path / "videos" / split / "Animation" / "cartoon"
            folder.mkdir(parents=True, exist_ok=True)
            write_video(folder / f"v{k}.mp4", frames + k)
    proc = _spawn(["extract", tmp_path / "videos", tmp_path / "out", "--workers", "2", "--backbone",
                   "vidstudy.extraction.backbone:lite0_backbone", "--quiet"])
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive():
        out = []
        for pid in workers:
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
            except OSError:
                pass
        return out

    deadline = time.time() + 30  # a worker still starting up ends as soon as it is up
    while alive() and time.time() < deadline:
        time.sleep(0.2)
    assert workers and alive() == []


def test_a_killed_book_leaves_no_temporary_notebook_that_breaks_the_next(tmp_path):
    from vidstudy.study.book import build_book

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "root"
    for name in ("notebooks", "book"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(repo / name, root / name)
    code = f"from vidstudy.study.book import build_book; build_book(smoke=True, root={str(root)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((root / "book" / "executed").glob(".*.ipynb.*")):
        time.sleep(0.1)  # a chapter is being executed into its temporary notebook
    assert list((root / "book" / "executed").glob(".*.ipynb.*")), "the book never started a chapter"
    _kill_after(proc, random.Random(0).uniform(0.5, 2.0))
    assert list((root / "book" / "executed").glob(".*.ipynb.*"))  # the kill left its temporary notebook
    build_book(smoke=True, root=root, echo=lambda _: None, chapters=("01_data",), html=False)
    assert not list((root / "book" / "executed").glob(".*.ipynb.*"))
    assert '"**/.*"' in (root / "_config.yml").read_text()  # hidden files are never pages, even if a kill leaves one


def test_readme_lists_every_config_range():
    from vidstudy.config import RANGES, _interval, model_ranges

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): [c.strip().removesuffix(" each") for c in line.split("|")[2:-1]]
            for line in readme.splitlines() if line.startswith("| `")}
    assert {k: rows.get(k, [None])[0] for k in RANGES} == {k: _interval(*v) for k, v in RANGES.items()}
    expected = {k: [_interval(*v["range"]), ", ".join(v["families"])] for k, v in model_ranges().items()}
    assert {k: rows.get(k) for k in expected} == expected


def test_a_book_with_other_epochs_gets_a_run_folder_of_its_own(smoke_dir):
    """Changing only `epochs` in a book's parameters trains a new run rather than failing on the old one."""
    from vidstudy.study.chapter import Params, setup

    def folder(members, epochs):
        return setup(Params(data_dir=str(smoke_dir), run_dir="runs/x", members=members, epochs=epochs, smoke=True))[2]

    folders = {folder(2, epochs) for epochs in (0, 2, 3)}
    assert len(folders) == 3
    assert folder(3, 2) in folders  # members do not change the folder


def test_tampered_partial_results_are_extracted_again(tmp_path, capsys):
    import torch

    from vidstudy.extraction.backbone import ImageBackbone
    from vidstudy.extraction.extract import PARTIAL_DIR, extract
    from vidstudy.extraction.video import Sampling, write_video

    colour = ImageBackbone(torch.nn.Identity(), input_size=16, mean=(0, 0, 0), std=(1, 1, 1), name="mean-colour",
                           feature_fn=lambda x: x.mean(dim=(2, 3)))

    class Interrupting:
        name, input_size, calls = colour.name, colour.input_size, 0

        def __call__(self, frames):
            Interrupting.calls += 1
            if Interrupting.calls == 4:
                raise KeyboardInterrupt
            return colour(frames)

    for k in range(4):
        folder = tmp_path / "videos" / "train" / ("Animation" if k % 2 else "Gaming") / "sub"
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f"v{k}.mp4", np.full((12, 32, 32, 3), 40 * k, np.uint8))
    sampling = Sampling(num_frames=6)
    with pytest.raises(KeyboardInterrupt):
        extract(tmp_path / "videos", tmp_path / "out", backbone=Interrupting(), sampling=sampling, progress=False)
    partials = sorted((tmp_path / "out" / PARTIAL_DIR / "train").glob("*.npy"))
    assert len(partials) == 3
    partials[0].write_bytes(b"not an array")
    np.save(partials[1], np.zeros((2, 3, 4), np.float32))  # the wrong rank
    (partials[2].with_suffix(".skip.json")).write_text("{")  # a damaged skip note beside good features
    capsys.readouterr()
    report = extract(tmp_path / "videos", tmp_path / "out", backbone=colour, sampling=sampling, progress=False)
    assert report["splits"]["train"]["videos_written"] == 4 and report["splits"]["train"]["resumed"] == 1
    assert capsys.readouterr().err.count("damaged partial result; extracting that video again") == 2
    fresh = extract(tmp_path / "videos", tmp_path / "fresh", backbone=colour, sampling=sampling, progress=False)
    assert fresh["splits"]["train"]["videos_written"] == 4
    with (h5py.File(tmp_path / "out" / feature_file_name("train")) as a,
          h5py.File(tmp_path / "fresh" / feature_file_name("train")) as b):
        np.testing.assert_array_equal(a["features"][()], b["features"][()])


def test_other_data_that_is_missing_is_named_without_a_misleading_remedy(run, tmp_path, capsys):
    line = one_line_error(capsys, ["evaluate", run, tmp_path / "nope"], f"{tmp_path / 'nope' / 'test_features_multiscale.h5'}: "
                                                                         "feature file does not exist.")
    assert "--force" not in line


BAD_USAGE = [["simulate", "D", "--shape", "huge"], ["train", "D", "R", "--epochs", "abc"], ["inspect"],
             ["probe", "D", "--kind", "x"], ["predict"], ["evaluate", "R", "--bootstrap", "many"], ["extract", "V"],
             ["book", "--smoke", "extra"],
             ["nonsense"], [], ["train", "D", "R", "--unknown-flag"]]


@pytest.mark.parametrize("argv", BAD_USAGE, ids=[" ".join(a) or "(none)" for a in BAD_USAGE])
def test_usage_errors_of_every_command_are_one_line(argv):
    r = subprocess.run([sys.executable, "-m", "vidstudy.cli", *argv], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and r.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("vidstudy: error: vidstudy"), r.stderr
