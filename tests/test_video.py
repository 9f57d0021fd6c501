"""Choosing and decoding frames."""

import numpy as np
import pytest

from vidstudy.errors import ParameterError
from vidstudy.extraction import video
from vidstudy.extraction.video import (
    Sampling,
    VideoError,
    count_packets,
    frame_indices,
    read_frames,
    scan_packets,
    seek_plan,
    write_video,
)


def test_uniform_sampling_spreads_distinct_frames_over_the_whole_video():
    idx = frame_indices(1000, Sampling(num_frames=10))
    assert list(idx) == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
    assert len(np.unique(frame_indices(65, Sampling(num_frames=64)))) == 64


def test_short_videos_keep_every_frame_and_no_more():
    assert list(frame_indices(5, Sampling(num_frames=64))) == [0, 1, 2, 3, 4]
    assert list(frame_indices(5, Sampling(num_frames=64, clips=3))) == [0, 1, 2, 3, 4]


def test_three_clips_are_centred_at_20_50_and_80_percent():
    idx = frame_indices(1000, Sampling(num_frames=63, clips=3, clip_width=0.2))
    assert len(idx) == 63
    clips = np.split(idx, 3)
    assert [round(float(np.mean(c)) / 1000, 2) for c in clips] == [0.2, 0.5, 0.8]
    assert all(c.max() - c.min() < 200 for c in clips)


@pytest.mark.parametrize(("kw", "message"), [
    ({"num_frames": 2}, "num_frames"), ({"clips": 2}, "clips"), ({"clip_width": 0.5}, "clip_width"),
    ({"frame_size": 8}, "frame_size"),
])
def test_bad_sampling_parameters_are_named(kw, message):
    with pytest.raises(ParameterError, match=message):
        Sampling(**kw)


@pytest.mark.parametrize(("ext", "codec"), [("mp4", "libx264"), ("avi", "mpeg4"), ("mkv", "libx264"),
                                            ("webm", "libvpx-vp9")])
def test_every_supported_container_round_trips(tmp_path, ext, codec):
    ramp = (np.linspace(0, 250, 12)[:, None, None, None] * np.ones((1, 32, 48, 3))).astype(np.uint8)
    path = write_video(tmp_path / f"ramp.{ext}", ramp, codec=codec)
    assert count_packets(path) == 12
    frames = read_frames(path, Sampling(num_frames=4, frame_size=16))
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    # frames 1, 4, 7, 10 of a brightness ramp, in order
    assert np.all(np.diff(frames.reshape(4, -1).mean(axis=1)) > 30)


def test_a_truncated_file_yields_the_frames_that_decode(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (30, 32, 48, 3), dtype=np.uint8)
    whole = write_video(tmp_path / "whole.mkv", noise).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 2])
    frames = read_frames(cut, Sampling(num_frames=8, frame_size=16))
    assert 3 <= len(frames) <= 8


def test_unusable_files_raise_a_reason(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    two = write_video(tmp_path / "two.mp4", np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(VideoError, match="empty"):
        read_frames(tmp_path / "empty.mp4", Sampling())
    with pytest.raises(VideoError, match="cannot be opened"):
        read_frames(tmp_path / "junk.mp4", Sampling())
    with pytest.raises(VideoError, match="at least 3"):
        read_frames(two, Sampling())


def test_seek_plan_seeks_only_past_frames_already_decoded():
    keyframes = np.array([0, 10, 20, 30])
    starts, cost = seek_plan(np.array([5, 25, 27, 33]), keyframes)
    assert [start is not None for start in starts] == [True, True, False, True]
    assert starts == [0, 20, None, 30]
    assert cost == 6 + 6 + 2 + 4  # 0..5, 20..25, 26..27, 30..33
    assert seek_plan(np.arange(40), keyframes)[1] == 40  # dense sampling: no saving


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """200 frames, a keyframe at least every 10."""
    rng = np.random.default_rng(0)
    clip = np.repeat(rng.integers(0, 255, (40, 1, 1, 3), dtype=np.uint8), 5, axis=0)  # 200 frames
    clip = np.broadcast_to(clip, (200, 32, 48, 3)).copy()
    clip[:, :4, :4] = np.arange(200, dtype=np.uint8)[:, None, None, None]
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", clip, gop=10)


def test_long_videos_are_read_by_seeking_to_the_same_frames(long_video, monkeypatch):
    path = long_video
    index = scan_packets(path)
    assert index.count == 200 and index.keyframes is not None and len(index.keyframes) >= 20
    sampling = Sampling(num_frames=8, frame_size=32)
    straight = read_frames(path, sampling, seek=False)
    monkeypatch.setattr(video, "_decode", lambda *a: pytest.fail("decoded straight through instead of seeking"))
    np.testing.assert_array_equal(read_frames(path, sampling), straight)


def _paths_taken(monkeypatch) -> list[str]:
    """Record, per read, whether frames were reached by seeking or by decoding in order."""
    taken = []
    for name in ("_decode", "_decode_seeking"):
        real = getattr(video, name)

        def wrapper(*args, _real=real, _name=name):
            taken.append(_name.strip("_"))
            return _real(*args)

        monkeypatch.setattr(video, name, wrapper)
    return taken


def test_seeking_is_chosen_exactly_when_it_decodes_under_half_the_frames(long_video, monkeypatch):
    """The rule: seek when the planned decoding cost is under half of decoding up to the last wanted frame.
    Checked on the sampling densities nearest that threshold from either side, on this file's keyframes."""
    index = scan_packets(long_video)
    ratios = {}
    for n in range(4, 60):
        wanted = frame_indices(index.count, Sampling(num_frames=n))
        ratios[n] = seek_plan(wanted, index.keyframes)[1] / (wanted[-1] + 1)
    below = max((n for n in ratios if ratios[n] < 0.5), key=ratios.get)
    above = min((n for n in ratios if ratios[n] >= 0.5), key=ratios.get)
    assert 0.3 < ratios[below] < 0.5 <= ratios[above] < 0.7  # both close to the threshold
    taken = _paths_taken(monkeypatch)
    for n, path in ((below, ["decode_seeking"]), (above, ["decode"])):
        taken.clear()
        frames = read_frames(long_video, Sampling(num_frames=n, frame_size=32))
        assert taken == path, (n, ratios[n])
        np.testing.assert_array_equal(frames, read_frames(long_video, Sampling(num_frames=n, frame_size=32), seek=False))


def test_a_seek_that_does_not_land_on_the_planned_frame_falls_back_to_decoding(long_video, monkeypatch):
    sampling = Sampling(num_frames=8, frame_size=32)
    straight = read_frames(long_video, sampling, seek=False)
    taken = _paths_taken(monkeypatch)
    real = video._decode_seeking
    # every timestamp one tick off: the first decoded frame is not the one asked for
    monkeypatch.setattr(video, "_decode_seeking", lambda path, wanted, pts, *rest: real(path, wanted, pts + 1, *rest))
    np.testing.assert_array_equal(read_frames(long_video, sampling), straight)
    assert taken == ["decode_seeking", "decode"]  # tried, found the wrong frame, decoded in order


def test_extract_of_a_long_video_seeks_and_gives_the_file_decoding_would(long_video, tmp_path, monkeypatch):
    import shutil

    import h5py
    import torch

    from vidstudy.extraction.backbone import ImageBackbone
    from vidstudy.extraction.extract import extract
    from vidstudy.features import feature_file_name

    folder = tmp_path / "v" / "test" / "A" / "s"
    folder.mkdir(parents=True)
    shutil.copy(long_video, folder)
    colour = ImageBackbone(torch.nn.Identity(), input_size=32, mean=(0, 0, 0), std=(1, 1, 1), name="mean-colour",
                           feature_fn=lambda x: x.flatten(1))
    taken = _paths_taken(monkeypatch)
    extract(tmp_path / "v", tmp_path / "seek", backbone=colour, sampling=Sampling(num_frames=8), progress=False)
    assert taken == ["decode_seeking"]
    monkeypatch.setattr(video, "_decode_seeking", lambda *a: None)  # seeking "fails": decoded in order
    extract(tmp_path / "v", tmp_path / "decode", backbone=colour, sampling=Sampling(num_frames=8), progress=False)
    with (h5py.File(tmp_path / "seek" / feature_file_name("test")) as a,
          h5py.File(tmp_path / "decode" / feature_file_name("test")) as b):
        np.testing.assert_array_equal(a["features"][()], b["features"][()])
