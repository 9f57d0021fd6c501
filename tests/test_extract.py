"""`vidstudy extract`: from a tree of videos to validated feature files."""

import json
import os

import h5py
import numpy as np
import pytest
import torch

from vidstudy.cli import main
from vidstudy.errors import ParameterError, VidstudyError
from vidstudy.extraction.backbone import ImageBackbone, lite0_backbone
from vidstudy.extraction.extract import PARTIAL_DIR, REPORT_NAME, extract
from vidstudy.extraction.video import Sampling, write_video
from vidstudy.features import FeatureFile, feature_file_name

SAMPLING = Sampling(num_frames=6)


def _clip(kind: str, n: int, seed: int) -> np.ndarray:
    """Tiny rendered clips: a moving disc on a flat colour, or scrolling text-like stripes on white."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :64]
    frames = np.empty((n, 48, 64, 3), np.uint8)
    colour = rng.integers(0, 255, 3)
    for t in range(n):
        if kind == "disc":
            frame = np.broadcast_to(colour, (48, 64, 3)).copy()
            frame[(yy - 24) ** 2 + (xx - 8 - 6 * t) ** 2 < 64] = (255, 220, 0)
        else:
            frame = np.full((48, 64, 3), 255, np.uint8)
            frame[((yy + 3 * t) % 8 < 2) & (xx > 6) & (xx < 58)] = 20
        frames[t] = frame
    return frames


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for split, count in (("train", 2), ("val", 1)):
        for cat, sub, kind in (("Animation", "cartoon", "disc"), ("Flat_Content", "slides", "text")):
            for i in range(count):
                write_video(root / split / cat / sub / f"{kind}{i}.mp4", _clip(kind, 8 + 2 * i, seed=i))
    bad = root / "train" / "Animation" / "cartoon"
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "corrupt.avi").write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    (bad / "notes.txt").write_text("not a video, ignored")
    return root


@pytest.fixture(scope="module")
def lite0():
    return lite0_backbone()


@pytest.fixture(scope="module")
def extracted(video_tree, lite0, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    report = extract(video_tree, out, backbone=lite0, sampling=SAMPLING, progress=False)
    return out, report


def test_end_to_end_files_pass_inspect(extracted, capsys):
    out, report = extracted
    assert main(["inspect", str(out / feature_file_name("train"))]) == 0
    text = capsys.readouterr().out
    assert "features (D)  1280" in text and "efficientnet-lite0" in text
    train, val = FeatureFile(out / feature_file_name("train")), FeatureFile(out / feature_file_name("val"))
    assert train.category_mapping == val.category_mapping == {"Animation": 0, "Flat_Content": 1}
    assert train.video_ids == ["Animation/cartoon/disc0", "Animation/cartoon/disc1",
                               "Flat_Content/slides/text0", "Flat_Content/slides/text1"]
    assert train.subcategories == ["cartoon", "cartoon", "slides", "slides"]
    assert list(train.labels) == [0, 0, 1, 1] and train.multi_scale
    # 6 frames taken from each clip; time-aligned multi-scale over int(6 * 1.15) = 6 steps
    assert list(train.num_frames) == [6] * 4 and train.shape == (4, 6, 1280)
    assert train.extraction["sampling"]["num_frames"] == 6 and train.extraction["backbone"] == "efficientnet-lite0"
    assert report["splits"]["val"]["skipped"] == []


def test_bad_videos_are_skipped_warned_and_reported(video_tree, lite0, tmp_path, capsys):
    report = extract(video_tree, tmp_path, backbone=lite0, sampling=SAMPLING, splits=["train"], progress=False)
    skipped = {s["video"].rsplit("/", 1)[1]: s["reason"] for s in report["splits"]["train"]["skipped"]}
    assert skipped == {"corrupt.avi": "cannot be opened (Invalid data found when processing input)",
                       "empty.mp4": "the file is empty (0 bytes)"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 2 and all(line.endswith(".") for line in warnings)
    on_disk = json.loads((tmp_path / REPORT_NAME).read_text())
    assert on_disk["splits"]["train"]["skipped"] == report["splits"]["train"]["skipped"]
    assert not (tmp_path / PARTIAL_DIR).exists()


def _colour_backbone():
    """Each frame's mean colour at 16x16: a backbone with D=3 that costs nothing."""
    return ImageBackbone(torch.nn.Identity(), input_size=16, mean=(0, 0, 0), std=(1, 1, 1), name="mean-colour",
                         feature_fn=lambda x: x.mean(dim=(2, 3)))


class _Interrupting:
    """The Lite0 backbone, interrupted (like Ctrl-C) on its ``fail_at``-th call."""

    def __init__(self, inner, fail_at):
        self.inner, self.fail_at, self.calls = inner, fail_at, 0
        self.name, self.input_size = inner.name, inner.input_size

    def __call__(self, frames):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return self.inner(frames)


def _same_file(a, b):
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert set(fa) == set(fb) and dict(fa.attrs).keys() == dict(fb.attrs).keys()
        for k in fa:
            np.testing.assert_array_equal(fa[k][()], fb[k][()])
        for k in fa.attrs:
            assert fa.attrs[k] == fb.attrs[k], k


def test_resume_after_an_interruption_gives_the_same_file(video_tree, lite0, extracted, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        extract(video_tree, tmp_path, backbone=_Interrupting(lite0, fail_at=3), sampling=SAMPLING, progress=False)
    assert not (tmp_path / feature_file_name("train")).exists()  # nothing partial in the final place
    assert len(list((tmp_path / PARTIAL_DIR / "train").glob("*.npy"))) == 2
    report = extract(video_tree, tmp_path, backbone=lite0, sampling=SAMPLING, progress=False)
    assert report["splits"]["train"]["resumed"] == 4  # two features and two skips kept from the first try
    for split in ("train", "val"):
        _same_file(tmp_path / feature_file_name(split), extracted[0] / feature_file_name(split))
    assert not (tmp_path / PARTIAL_DIR).exists()


class _Failing:
    name = "broken-cnn"

    def __init__(self, result=None):
        self.result = result

    def __call__(self, frames):
        if self.result is None:
            raise ZeroDivisionError("division by zero")
        return self.result


@pytest.mark.parametrize("backbone, needle", [
    (_Failing(), "the backbone broken-cnn failed on a batch of 6 frames (ZeroDivisionError: division by zero)."),
    (_Failing([["a", "b"]] * 6), "the backbone broken-cnn failed on a batch of 6 frames (ValueError: could not convert"),
], ids=["raises", "returns strings"])
def test_a_backbone_that_fails_is_named_in_one_sentence(video_tree, tmp_path, backbone, needle):
    with pytest.raises(ParameterError) as info:
        extract(video_tree, tmp_path, backbone=backbone, sampling=SAMPLING, splits=["val"], progress=False)
    assert str(info.value).startswith(needle) and "\n" not in str(info.value), str(info.value)
    assert not (tmp_path / feature_file_name("val")).exists()


class _Counting:
    """A backbone that counts the frames it is given."""

    def __init__(self, inner):
        self.inner, self.frames = inner, 0
        self.name, self.input_size = inner.name, inner.input_size

    def __call__(self, frames):
        self.frames += len(frames)
        return self.inner(frames)


def test_a_second_run_reuses_finished_splits_and_redoes_changed_ones(video_tree, tmp_path):
    tree = tmp_path / "videos"
    write_video(tree / "val" / "A" / "x" / "a.mp4", _clip("disc", 8, 0))
    write_video(tree / "val" / "B" / "y" / "b.mp4", _clip("text", 8, 0))
    colour = _Counting(_colour_backbone())
    out = tmp_path / "out"
    first = extract(tree, out, backbone=colour, progress=False)
    assert first["splits"]["val"]["videos_written"] == 2
    written = out / feature_file_name("val")
    before, frames = (written.read_bytes(), written.stat().st_mtime_ns), colour.frames
    again = extract(tree, out, backbone=colour, progress=False)
    assert again["splits"]["val"]["up_to_date"]
    assert colour.frames == frames and (written.read_bytes(), written.stat().st_mtime_ns) == before  # not touched
    write_video(tree / "val" / "B" / "y" / "c.mp4", _clip("text", 9, 1))
    third = extract(tree, out, backbone=colour, progress=False)
    assert "up_to_date" not in third["splits"]["val"] and third["splits"]["val"]["videos_written"] == 3
    # frames are decoded at the backbone's input size and features are its output: [L, 3] mean colours
    assert FeatureFile(out / feature_file_name("val")).feature_dim == 3


def test_a_video_rewritten_in_place_with_the_same_size_is_extracted_again(tmp_path):
    tree = tmp_path / "videos"
    write_video(tree / "val" / "A" / "x" / "a.mp4", _clip("disc", 8, 0))
    write_video(tree / "val" / "B" / "y" / "b.mp4", _clip("text", 8, 0))
    out, colour = tmp_path / "out", _Counting(_colour_backbone())
    extract(tree, out, backbone=colour, progress=False)
    first = colour.frames
    assert extract(tree, out, backbone=colour, progress=False)["splits"]["val"]["up_to_date"] and colour.frames == first
    video = tree / "val" / "B" / "y" / "b.mp4"
    st, data = video.stat(), bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, same modification time, other content
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = extract(tree, out, backbone=colour, progress=False)
    assert "up_to_date" not in again["splits"]["val"]
    assert again["splits"]["val"]["resumed"] == 0 and colour.frames > first  # nothing reused from before


def test_features_can_be_written_inside_the_video_folder(tmp_path):
    tree = tmp_path / "videos"
    write_video(tree / "val" / "A" / "x" / "a.mp4", _clip("disc", 8, 0))
    for _ in range(2):  # the second run must not take the output folder for a split
        report = extract(tree, tree / "features", backbone=_colour_backbone(), progress=False)
        assert list(report["splits"]) == ["val"]


def test_no_multiscale_keeps_true_lengths_and_workers_agree(tmp_path):
    tree = tmp_path / "videos"
    write_video(tree / "test" / "A" / "s" / "short.mp4", _clip("disc", 5, 0))
    write_video(tree / "test" / "A" / "s" / "long.mp4", _clip("disc", 20, 1))
    colour = _colour_backbone()
    sampling = Sampling(num_frames=8)
    extract(tree, tmp_path / "a", backbone=colour, sampling=sampling, multiscale=False, progress=False)
    extract(tree, tmp_path / "b", backbone=colour, sampling=sampling, multiscale=False, workers=1, progress=False)
    ff = FeatureFile(tmp_path / "a" / feature_file_name("test"))
    assert not ff.multi_scale and ff.video_ids == ["A/s/long", "A/s/short"]
    assert list(ff.num_frames) == [8, 5] and ff.shape == (2, 8, 3)
    _same_file(tmp_path / "a" / feature_file_name("test"), tmp_path / "b" / feature_file_name("test"))


def test_layout_problems_name_the_folder_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match="video folder does not exist"):
        extract(tmp_path / "missing", out, backbone=lambda x: x)
    (tmp_path / "v1" / "train").mkdir(parents=True)
    with pytest.raises(ParameterError, match=r"v1/train: split folder is empty"):
        extract(tmp_path / "v1", out, backbone=lambda x: x)
    (tmp_path / "v2" / "train" / "Gaming" / "sub").mkdir(parents=True)
    with pytest.raises(ParameterError, match=r"v2/train/Gaming: category folder has no video files"):
        extract(tmp_path / "v2", out, backbone=lambda x: x)
    assert not out.exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match="file: video folder is a file"):
        extract(tmp_path / "file", out, backbone=lambda x: x)
    with pytest.raises(ParameterError, match="file: output folder is a file"):
        extract(tmp_path / "v2", tmp_path / "file", backbone=lambda x: x)


def test_a_split_with_no_usable_video_is_an_error_with_the_report(tmp_path):
    tree = tmp_path / "videos" / "train" / "A" / "s"
    tree.mkdir(parents=True)
    (tree / "empty.mp4").write_bytes(b"")
    with pytest.raises(VidstudyError, match=r"videos/train: none of its 1 videos could be used"):
        extract(tmp_path / "videos", tmp_path / "out", backbone=lambda x: x, progress=False)
    assert json.loads((tmp_path / "out" / REPORT_NAME).read_text())["splits"]["train"]["skipped"]
    assert not (tmp_path / "out" / feature_file_name("train")).exists()


def test_cli_extracts_with_the_default_backbone(video_tree, tmp_path, capsys):
    assert main(["extract", str(video_tree), str(tmp_path), "--splits", "val", "--frames", "3", "--quiet"]) == 0
    assert "val: 2 of 2 videos" in capsys.readouterr().out
    ff = FeatureFile(tmp_path / feature_file_name("val"))
    assert ff.feature_dim == 1280 and ff.extraction["sampling"]["num_frames"] == 3


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "missing"), str(tmp_path / "out"), "--quiet"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"vidstudy: error: {tmp_path / 'missing'}: video folder does not exist."]
    assert main(["extract", str(tmp_path), str(tmp_path / "out"), "--backbone", "nomodule"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "vidstudy: error: --backbone must be efficientnet-lite0 or MODULE:FACTORY (a function returning a backbone), "
        "got 'nomodule'."]
    assert not (tmp_path / "out").exists()


# --- the command's options with a backbone of our own, a real SIGKILL, and the seek-or-decode rule ---------------

_MARKER_MODULE = '''
import os
import time

import numpy as np

BATCHES = []


class FrameMarker:
    """Reads back which frame it was given: the clips below are flat grey at level 8 + 6 * (frame index)."""

    name, input_size = "frame-marker", 16

    def __call__(self, frames):
        BATCHES.append(len(frames))
        time.sleep(float(os.environ.get("MARKER_SECONDS_PER_BATCH", "0")))
        return np.rint((frames.reshape(len(frames), -1).mean(axis=1, keepdims=True) - 8) / 6).astype(np.float32)


def factory(device="cpu"):
    return FrameMarker()
'''


def _graded(n: int) -> np.ndarray:
    """``n`` (at most 40) flat grey frames, frame t at level 8 + 6 t: the backbone above reads t back through the
    codec's error of a level or two."""
    return np.broadcast_to((8 + 6 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, 32, 32, 3)).copy()


@pytest.fixture
def marker(tmp_path, monkeypatch):
    (tmp_path / "marker_backbone.py").write_text(_MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import marker_backbone

    importlib.reload(marker_backbone)
    return marker_backbone


def test_cli_clips_3_and_batch_size_reach_a_backbone_given_as_module_factory(tmp_path, marker, capsys):
    from vidstudy.extraction.video import frame_indices

    write_video(tmp_path / "videos" / "test" / "A" / "s" / "v.mp4", _graded(40))
    argv = ["extract", str(tmp_path / "videos"), str(tmp_path / "out"), "--backbone", "marker_backbone:factory",
            "--frames", "9", "--batch-size", "2", "--no-multiscale", "--quiet"]
    assert main(argv + ["--clips", "3"]) == 0
    ff = FeatureFile(tmp_path / "out" / feature_file_name("test"))
    taken = ff.frames(0)[:, 0].astype(int)
    three_clips = frame_indices(40, Sampling(num_frames=9, clips=3))
    assert list(taken) == list(three_clips) != list(frame_indices(40, Sampling(num_frames=9)))
    # 3 frames at the middles of thirds of an 8-frame window (0.2 x 40) round frames 8, 20 and 32
    assert list(three_clips) == [5, 8, 10, 17, 20, 22, 29, 32, 34]
    assert marker.BATCHES == [2, 2, 2, 2, 1]  # 9 frames in batches of --batch-size 2
    assert ff.extraction["backbone"] == "frame-marker" and ff.extraction["sampling"]["clips"] == 3
    assert "test: 1 of 1 videos" in capsys.readouterr().out
    marker.BATCHES.clear()
    assert main(argv + ["--clips", "1"]) == 0  # other sampling: extracted again, uniformly
    assert list(FeatureFile(tmp_path / "out" / feature_file_name("test")).frames(0)[:, 0].astype(int)) == \
        list(frame_indices(40, Sampling(num_frames=9)))
    assert marker.BATCHES == [2, 2, 2, 2, 1]


def test_extraction_killed_by_sigkill_resumes_where_it_stopped(tmp_path, marker):
    import signal
    import subprocess
    import sys
    import time

    for k in range(6):
        write_video(tmp_path / "videos" / "train" / "A" / "s" / f"v{k}.mp4", _graded(6 + k))
    argv = ["extract", str(tmp_path / "videos"), str(tmp_path / "out"), "--backbone", "marker_backbone:factory",
            "--frames", "4", "--batch-size", "4", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "MARKER_SECONDS_PER_BATCH": "0.7"}
    proc = subprocess.Popen([sys.executable, "-m", "vidstudy.cli", *argv], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = tmp_path / "out" / PARTIAL_DIR / "train"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(partial.glob("*.npy"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read()
    done = len(list(partial.glob("*.npy")))
    assert 2 <= done < 6 and not (tmp_path / "out" / feature_file_name("train")).exists()

    assert main(argv) == 0  # in this process, without the delay
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())["splits"]["train"]
    assert report["resumed"] == done and len(marker.BATCHES) == 6 - done  # only the unfinished videos ran
    assert not (tmp_path / "out" / PARTIAL_DIR).exists()
    assert main(argv[:2] + [str(tmp_path / "fresh")] + argv[3:]) == 0  # never interrupted
    _same_file(tmp_path / "out" / feature_file_name("train"), tmp_path / "fresh" / feature_file_name("train"))


def test_sources_json_names_each_videos_source_or_is_refused(tmp_path):
    tree = tmp_path / "videos"
    write_video(tree / "val" / "A" / "x" / "a.mp4", _clip("disc", 8, 0))
    write_video(tree / "val" / "B" / "y" / "b.mp4", _clip("text", 8, 0))
    (tree / "sources.json").write_text(json.dumps({"val": {"A/x/a": "ale:pong"}}))
    with pytest.raises(ParameterError, match=r"sources\.json: names no source for video val/B/y/b \(1 in all\)\.$"):
        extract(tree, tmp_path / "out", backbone=_colour_backbone(), progress=False)
    assert not (tmp_path / "out").exists()
    (tree / "sources.json").write_text(json.dumps({"val": {"A/x/a": "ale:pong", "B/y/b": "screen:code"}}))
    extract(tree, tmp_path / "out", backbone=_colour_backbone(), progress=False)
    ff = FeatureFile(tmp_path / "out" / feature_file_name("val"))
    assert ff.sources == ["ale:pong", "screen:code"]
    (tree / "sources.json").write_text(json.dumps({"val": {"A/x/a": "ale:breakout", "B/y/b": "screen:code"}}))
    again = extract(tree, tmp_path / "out", backbone=_colour_backbone(), progress=False)  # a renamed source: new file
    assert "up_to_date" not in again["splits"]["val"]
    assert FeatureFile(tmp_path / "out" / feature_file_name("val")).sources == ["ale:breakout", "screen:code"]
