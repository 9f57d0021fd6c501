"""`vidstudy classify`: a trained run applied to video files, with the features made as the run's were."""

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import tree_digest

from vidstudy.calibration import calibrated, fit_confidence_threshold
from vidstudy.cli import main
from vidstudy.errors import ParameterError
from vidstudy.extraction.extract import extract
from vidstudy.extraction.video import Sampling, frame_indices, write_video
from vidstudy.inference.classify import EXIT_ALL, EXIT_NONE, EXIT_SOME, Classifier, classify, video_paths
from vidstudy.inference.output import CSV_FIXED
from vidstudy.predictions import load_predictions
from vidstudy.tta import BASE_VIEWS

PROBE = '''
"""Per frame: its mean R, G, B and grey level (0..1); records what it is given."""
import numpy as np

CALLS = []  # [frames, height, width] of every call
LEVELS = []  # each frame's mean grey level (0..255), in the order given
FAIL_AT = [0]  # raise KeyboardInterrupt on that call (0: never)


class Probe:
    name, input_size = "frame-probe", 16

    def __call__(self, frames):
        CALLS.append(list(frames.shape[:3]))
        if len(CALLS) == FAIL_AT[0]:
            raise KeyboardInterrupt
        mean = frames.reshape(len(frames), -1, 3).mean(axis=1)
        LEVELS.extend(mean.mean(axis=1).tolist())
        return np.concatenate([mean, mean.mean(axis=1, keepdims=True)], axis=1).astype(np.float32) / 255


def factory(device="cpu"):
    return Probe()
'''
COLOURS = {"Animation": (220, 40, 40), "Flat_Content": (40, 200, 40), "Gaming": (40, 40, 220),
           "Natural_Content": (200, 200, 200)}
SAMPLING = Sampling(num_frames=9, clips=3)  # not the default: the run's settings must reach the backbone
FPS = 12


def _clip(category: str, n: int, seed: int) -> np.ndarray:
    """``n`` frames of the category's colour (shifted per clip) with pixel noise."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[category]) + rng.integers(-25, 25, 3)
    return np.clip(base + rng.normal(0, 8, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def _graded(n: int) -> np.ndarray:
    """Flat grey frames, frame t at level 8 + 6 t: the probe reads t back."""
    return np.broadcast_to((8 + 6 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, 32, 32, 3)).copy()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A run trained on features ``extract`` made with the probe backbone (3 clips of 9 frames), evaluated; new
    videos it never saw (one per class, and a joined one: Gaming, Animation, Natural_Content, 3 s each)."""
    import importlib
    import sys

    root = tmp_path_factory.mktemp("classify")
    (root / "probe_backbone.py").write_text(PROBE)
    sys.path.insert(0, str(root))
    probe = importlib.import_module("probe_backbone")
    seed = 0
    for split, count in (("train", 6), ("val", 3), ("test", 2)):
        for category in COLOURS:
            for i in range(count):
                seed += 1
                write_video(root / "videos" / split / category / "s" / f"c{i}.mp4", _clip(category, 24 + 6 * (i % 3), seed),
                            fps=FPS)
    extract(root / "videos", root / "features", backbone=probe.factory(), sampling=SAMPLING, progress=False)
    run = root / "run"
    assert main(["train", str(root / "features"), str(run), "--members", "2", "--epochs", "8", "--quiet", "--no-plots",
                 "--set", "train.batch_size=8", "--device", "cpu"]) == 0
    assert main(["evaluate", str(run), "--bootstrap", "20", "--subsequences", "1", "--device", "cpu"]) == 0
    new = root / "new" / "test"
    for k, category in enumerate(COLOURS):
        write_video(new / category / "s" / f"new{k}.mp4", _clip(category, 30, 1000 + k), fps=FPS)
    joined = np.concatenate([_clip(c, 3 * FPS, 2000 + k) for k, c in enumerate(("Gaming", "Animation", "Natural_Content"))])
    write_video(new / "Gaming" / "s" / "joined.mp4", joined, fps=FPS)
    yield {"root": root, "run": run, "new": root / "new", "probe": probe, "spec": "probe_backbone:factory"}
    sys.path.remove(str(root))


def _options(world, **kw):
    return {"backbone": world["spec"], "device": "cpu", **kw}


def test_classify_equals_extract_then_predict(world, capsys):
    run, new = world["run"], world["new"]
    results = classify(run, [new], **_options(world, top_k=4))
    extract(new, world["root"] / "new-features", backbone=world["probe"].factory(), sampling=SAMPLING, progress=False)
    assert main(["predict", str(run), str(world["root"] / "new-features"), "--device", "cpu"]) == 0
    store = load_predictions(run, "test", data_dir=world["root"] / "new-features")
    temperature = json.loads((run / "results.json").read_text())["deployment"]["temperature"]
    base = [store.view_names.index(v) for v in BASE_VIEWS]
    by_id = {f"{r.path.split('/test/')[1].rsplit('.', 1)[0]}": r for r in results}
    assert sorted(by_id) == sorted(store.video_ids) and len(results) == 5
    for i, vid in enumerate(store.video_ids):
        members = store.probs[:, base, i].mean(axis=1)  # [M, C]
        expected = calibrated(members.mean(axis=0, keepdims=True), temperature)[0]
        got = by_id[vid].whole
        np.testing.assert_allclose([got.probabilities[c] for c in store.class_names], expected, atol=1e-5)
        np.testing.assert_allclose([p for _, p in got.members.values()], members.max(axis=1), atol=1e-5)
        assert [c for c, _ in got.members.values()] == [store.class_names[c] for c in members.argmax(1)]
        assert [c for c, _ in got.top_k] == [store.class_names[c] for c in np.argsort(-expected, kind="stable")]
    for k, category in enumerate(COLOURS):  # the new clips are recognised
        assert by_id[f"{category}/s/new{k}"].whole.category == category


def test_the_runs_extraction_settings_reach_the_backbone(world, tmp_path):
    probe = world["probe"]
    write_video(tmp_path / "graded.mp4", _graded(40), fps=FPS)
    probe.CALLS.clear()
    probe.LEVELS.clear()
    (result,) = classify(world["run"], [tmp_path / "graded.mp4"], **_options(world, batch_size=4))
    taken = [round((level - 8) / 6) for level in probe.LEVELS]
    assert taken == list(frame_indices(40, SAMPLING)) != list(frame_indices(40, Sampling(num_frames=9)))
    assert probe.CALLS == [[4, 16, 16], [4, 16, 16], [1, 16, 16]]  # 9 frames at the probe's size, batches of 4
    assert result.whole.frames_used == 9 and result.frames_total == 40


def _copy_run(world, tmp_path, change):
    """A copy of the run whose train file's extraction record is changed by ``change(attrs)`` (and data.json updated)."""
    from vidstudy.fingerprint import file_identity

    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    record = json.loads((run / "data.json").read_text())
    train = tmp_path / "train.h5"
    shutil.copy(record["files"]["train"]["path"], train)
    with h5py.File(train, "a") as f:
        change(f.attrs)
    record["files"]["train"] = {**file_identity(train), "path": str(train)}
    (run / "data.json").write_text(json.dumps(record))
    return run


def test_a_run_without_an_extraction_record_is_refused_unless_a_backbone_is_named(world, tiny_run, tmp_path, capsys):
    with pytest.raises(ParameterError, match=r"the run's features were simulated \(vidstudy simulate\), so classify "
                                             r"cannot make the same features from videos; pass --backbone"):
        Classifier(tiny_run, device="cpu")
    own = _copy_run(world, tmp_path, lambda attrs: attrs.__delitem__("extraction"))
    video = world["new"] / "test" / "Gaming" / "s" / "new2.mp4"
    assert main(["classify", str(own), str(video), "--device", "cpu"]) == 1
    assert capsys.readouterr().err.strip().endswith("the run's features were not made by vidstudy extract, so classify "
                                                    "cannot make the same features from videos; pass --backbone "
                                                    "NAME|MODULE:FACTORY to classify with a backbone of your choosing.")
    assert main(["classify", str(own), str(video), "--device", "cpu", "--backbone", world["spec"]]) == 0
    out, err = capsys.readouterr()
    assert "vidstudy: note: the run's features were not made by vidstudy extract; using the backbone frame-probe" in err
    assert "Gaming" in out.splitlines()[2]
    # the run's own backbone cannot be built by name: refused; named, it is used without a note
    assert main(["classify", str(world["run"]), str(video), "--device", "cpu"]) == 1
    assert "made by the backbone 'frame-probe', which classify cannot build by name" in capsys.readouterr().err
    assert main(["classify", str(world["run"]), str(video), "--device", "cpu", "--backbone", world["spec"]]) == 0
    assert "note" not in capsys.readouterr().err


def test_a_run_made_by_the_default_backbone_gets_it_without_being_asked(world, tmp_path):
    def as_lite0(attrs):
        record = json.loads(attrs["extraction"])
        attrs["extraction"] = json.dumps({**record, "backbone": "efficientnet-lite0"})

    run = _copy_run(world, tmp_path, as_lite0)
    clf_error = pytest.raises(ParameterError, match="the backbone gives 1280-d features but the run's members take 4-d")
    with clf_error:  # EfficientNet-Lite0 was built from the record, at 224 pixels (the run's 4-d members refuse it)
        classify(run, [world["new"] / "test" / "Gaming" / "s" / "new2.mp4"], device="cpu")


def test_folders_lists_and_repeats(tmp_path):
    for name in ("a/x.mp4", "a/b/y.MKV", "a/.hidden/z.mp4", "a/notes.txt", "c.avi", "d/notes.txt", "d/.cache/v.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# my videos\nc.avi\n\na/x.mp4\n")
    assert video_paths([tmp_path / "a", f"@{listing}", tmp_path / "a" / "x.mp4"]) == [
        tmp_path / "a" / "b" / "y.MKV", tmp_path / "a" / "x.mp4", tmp_path / "c.avi"]
    listing.write_text("c.avi\nmissing.mp4\n")
    with pytest.raises(ParameterError, match=r"list\.txt, line 2: missing\.mp4: does not exist\."):
        video_paths([f"@{listing}"])
    with pytest.raises(ParameterError, match=r"/d: folder holds no video files \(\.mp4, \.avi, \.mkv, \.webm\)\."):
        video_paths([tmp_path / "d"])  # hidden folders are not searched
    with pytest.raises(ParameterError, match="nope.txt: list of videos does not exist"):
        video_paths([f"@{tmp_path / 'nope.txt'}"])


def test_windows_of_a_joined_video_change_category_where_its_clips_change(world):
    (result,) = classify(world["run"], [world["new"] / "test" / "Gaming" / "s" / "joined.mp4"], **_options(world, window_s=1.5))
    assert result.duration_s == pytest.approx(9.0) and result.frames_total == 9 * FPS
    assert [(w.start_s, w.end_s) for w in result.windows] == [(1.5 * k, 1.5 * (k + 1)) for k in range(6)]
    assert [w.category for w in result.windows] == ["Gaming"] * 2 + ["Animation"] * 2 + ["Natural_Content"] * 2
    assert [w.frames_used for w in result.windows] == [9] * 6  # 18 frames a window, 9 taken as the run takes them
    assert all(w.agreement == 1.0 and w.confident for w in result.windows)
    assert not result.whole.confident  # the whole mixes three categories


def test_json_lines_and_csv(world, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    joined = world["new"] / "test" / "Gaming" / "s" / "joined.mp4"
    argv = ["classify", str(world["run"]), str(joined), str(bad), "--backbone", world["spec"], "--device", "cpu",
            "--window", "3", "--top-k", "3", "--json", str(tmp_path / "out.jsonl"), "--csv", str(tmp_path / "out.csv")]
    assert main(argv) == EXIT_SOME
    good, failed = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    call = {"top_k", "probabilities", "confident", "agreement", "members", "frames_used"}
    assert set(good) == {"path", "status", "error", "duration_s", "frames_total", "windows", "timings"} | call
    assert good["status"] == "classified" and good["error"] is None and len(good["top_k"]) == 3
    assert set(good["timings"]) == {"decode_s", "cnn_s", "members_s"}
    assert [set(w) for w in good["windows"]] == [call | {"start_s", "end_s"}] * 3
    assert [m["member"] for m in good["members"]] == ["ensemble_model_0", "ensemble_model_1"]
    assert sum(good["probabilities"].values()) == pytest.approx(1.0)
    assert set(failed) == {"path", "status", "error", "timings"} and failed["status"] == "failed"
    assert failed["error"].startswith("cannot be opened")
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].split(",")[:len(CSV_FIXED) + 2] == [*CSV_FIXED, "top1", "p1"] and rows[0].endswith("p_Natural_Content")
    assert [r.split(",")[3] for r in rows[1:]] == ["whole", "0", "1", "2", ""]  # the bad video: one row, its error
    assert rows[-1].split(",")[1] == "failed"
    capsys.readouterr()
    assert main(argv[:3] + ["--backbone", world["spec"], "--device", "cpu", "--json", "-", "--quiet"]) == EXIT_ALL
    out = capsys.readouterr().out
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["classified"]  # stdout is the JSON's alone


def test_bad_videos_are_reported_and_the_batch_goes_on_with_the_documented_status(world, tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.avi").write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    write_video(tmp_path / "two.mp4", _clip("Gaming", 2, 0), fps=FPS)
    good = world["new"] / "test" / "Animation" / "s" / "new0.mp4"
    base = ["classify", str(world["run"]), "--backbone", world["spec"], "--device", "cpu", "--quiet"]
    assert main(base + [str(tmp_path / "empty.mp4"), str(good), str(tmp_path / "corrupt.avi"), str(tmp_path / "two.mp4")]
                ) == EXIT_SOME == 3
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert warnings == [
        f"vidstudy: warning: {tmp_path / 'empty.mp4'}: not classified, the file is empty (0 bytes).",
        f"vidstudy: warning: {tmp_path / 'corrupt.avi'}: not classified, cannot be opened (Invalid data found when "
        f"processing input).",
        f"vidstudy: warning: {tmp_path / 'two.mp4'}: not classified, has 2 frame(s); at least 3 are needed."]
    assert "classified 1 of 4 videos" in captured.out and "Animation" in captured.out
    assert main(base + [str(tmp_path / "empty.mp4"), str(tmp_path / "corrupt.avi")]) == EXIT_NONE == 1
    assert capsys.readouterr().err.splitlines()[-1] == ("vidstudy: error: none of the 2 videos could be classified (the "
                                                        "reasons are above).")
    assert main(base + [str(good)]) == EXIT_ALL == 0


def test_outputs_are_atomic_and_nothing_else_is_written(world, tmp_path, capsys):
    probe, run, new = world["probe"], world["run"], world["new"]
    before = {"run": tree_digest(run), "new": tree_digest(new)}
    out = tmp_path / "results"
    argv = ["classify", str(run), str(new), "--backbone", world["spec"], "--device", "cpu", "--quiet",
            "--json", str(out / "r.jsonl"), "--csv", str(out / "r.csv")]
    probe.CALLS.clear()
    probe.FAIL_AT[0] = 3  # interrupted on the third video
    try:
        assert main(argv) == 130
    finally:
        probe.FAIL_AT[0] = 0
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []  # no half-written results, no temporary files
    assert main(argv) == EXIT_ALL
    assert sorted(p.name for p in out.iterdir()) == ["r.csv", "r.jsonl"]
    assert {"run": tree_digest(run), "new": tree_digest(new)} == before  # the run and the videos are untouched
    assert len((out / "r.jsonl").read_text().splitlines()) == 5


def test_missing_run_damaged_member_and_unevaluated_run_are_one_line(world, tmp_path, capsys):
    video = str(world["new"] / "test" / "Gaming" / "s" / "new2.mp4")
    opts = ["--backbone", world["spec"], "--device", "cpu"]
    assert main(["classify", str(tmp_path / "nowhere"), video, *opts]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"vidstudy: error: {tmp_path / 'nowhere'}: not a run folder (no config.json); run vidstudy train first."]
    assert main(["classify", str(world["run"]), str(tmp_path / "missing.mp4"), *opts]) == 1
    assert capsys.readouterr().err.splitlines() == [f"vidstudy: error: {tmp_path / 'missing.mp4'}: does not exist."]
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    (run / "results.json").unlink()
    assert main(["classify", str(run), video, *opts]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith(f"results.json: does not exist; run vidstudy evaluate {run} first (classify "
                                             f"uses the temperature and the confidence threshold it fits on validation).")
    shutil.copy(world["run"] / "results.json", run / "results.json")
    best = run / "members" / "ensemble_model_1" / "best.pt"
    shutil.copy(run / "members" / "ensemble_model_0" / "best.pt", best)  # a member trained again since evaluate
    assert main(["classify", str(run), video, *opts]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "was fitted for other checkpoints than the run's members now" in err[0]
    best.write_bytes(best.read_bytes()[:200])
    assert main(["classify", str(run), video, *opts]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"vidstudy: error: {best}: ")
    assert main(["evaluate", str(world["run"]), "--bootstrap", "20", "--device", "cpu"]) == 0  # unchanged: still fits
    capsys.readouterr()
    for bad, needle in ((["--top-k", "5"], "top_k (--top-k) must lie in [1, 4]"), (["--window", "0"], "window (--window)"),
                        (["--batch-size", "0"], "batch_size (--batch-size)"), (["--csv", str(tmp_path)], "is a folder (--csv)")):
        assert main(["classify", str(world["run"]), video, *opts, *bad]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and needle in err[0], (bad, err)


def test_the_confidence_threshold_is_the_lowest_that_keeps_the_target_accuracy():
    conf = np.array([0.99, 0.95, 0.95, 0.9, 0.8, 0.7, 0.6])
    right = np.array([1, 1, 1, 0, 1, 1, 0], bool)
    assert fit_confidence_threshold(conf, right, 0.8) == 0.7  # 5 of 6 right at 0.7 or more; 5 of 7 at 0.6
    assert fit_confidence_threshold(conf, right, 1.0) == 0.95
    tied = np.array([0.99, 0.9, 0.9])  # a threshold takes a tie whole: at 0.9, 2 of 3 are right
    assert fit_confidence_threshold(tied, np.array([1, 1, 0], bool), 1.0) == 0.99
    assert fit_confidence_threshold(conf, np.zeros(7, bool), 0.5) is None


def test_the_deployment_is_fitted_on_validation_only(world):
    from vidstudy.evaluate import deployment_report
    from vidstudy.predictions import load_predictions as load

    val, test = load(world["run"], "val"), load(world["run"], "test")
    before = deployment_report(val, test)
    test.labels = (test.labels + 1) % 4  # other test labels change what is reported, not what is fitted
    after = deployment_report(val, test)
    assert {k: before[k] for k in ("temperature", "views")} == {k: after[k] for k in ("temperature", "views")}
    assert before["confidence"]["threshold"] == after["confidence"]["threshold"]
    assert before["confidence"]["test"] != after["confidence"]["test"]


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU on this machine")
def test_on_a_gpu_the_backbone_and_the_members_run_there_and_give_the_cpus_calls(world, tmp_path):
    new = world["new"] / "test"
    on_cpu = classify(world["run"], [new], **_options(world))
    on_gpu = classify(world["run"], [new], **_options(world, device="cuda"))
    for a, b in zip(on_cpu, on_gpu):
        assert a.path == b.path and a.whole.category == b.whole.category
        np.testing.assert_allclose(list(a.whole.probabilities.values()), list(b.whole.probabilities.values()), atol=1e-4)
    lite0 = _copy_run(world, tmp_path, lambda attrs: attrs.__setitem__(
        "extraction", json.dumps({**json.loads(attrs["extraction"]), "backbone": "efficientnet-lite0"})))
    from vidstudy.inference.deployed import feature_recipe

    assert feature_recipe(lite0, None, "cuda").backbone.device.type == "cuda"  # the CNN runs batched on the device
