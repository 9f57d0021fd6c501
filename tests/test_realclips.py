"""`vidstudy realclips`: real frames in the four classes, source-disjoint splits, the same files from the same seed."""

from collections import Counter

import h5py
import numpy as np
import pytest
import torch

from vidstudy.cli import main
from vidstudy.errors import ParameterError
from vidstudy.extraction import realclips
from vidstudy.extraction.backbone import ImageBackbone
from vidstudy.features import FeatureFile, feature_file_name

TINY = realclips.Settings(seed=0, scale=0.05, min_seconds=0.5, max_seconds=1.0)  # one short clip per source


def _colour_backbone():
    """Each frame's mean colour over 4 x 4 cells: 48 numbers, no CNN (the full build uses EfficientNet-Lite0)."""
    return ImageBackbone(torch.nn.Identity(), input_size=32, mean=(0, 0, 0), std=(1, 1, 1), name="cells",
                         feature_fn=lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


def test_the_full_dataset_has_at_least_15_sources_per_class_and_60_in_all():
    clips = realclips.plan(realclips.Settings())
    assert len(clips) == sum(s.clips for s in realclips.SOURCES)
    per_class = Counter(s.category for s in realclips.SOURCES)
    assert set(per_class) == {"Animation", "Flat_Content", "Gaming", "Natural_Content"}
    assert min(per_class.values()) >= 15 and sum(per_class.values()) >= 60
    assert min(Counter(c["category"] for c in clips).values()) >= 100
    lengths = np.array([c["frames"] for c in clips])
    assert lengths.min() >= 2 * realclips.FPS and lengths.max() <= 12 * realclips.FPS and lengths.std() > 20


def test_the_readme_counts_the_clips_and_sources_as_the_catalogue_has_them():
    import re
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    clips, sources = map(int, re.search(r"(\d+) clips of real pixels from (\d+) sources", text).groups())
    assert (clips, sources) == (len(realclips.plan(realclips.Settings())), len(realclips.SOURCES))
    per_class = Counter(s.category for s in realclips.SOURCES)
    assert f"{per_class['Gaming']} Atari 2600 games" in text and f"(Animation, {per_class['Animation']}," in text
    assert f"{sum(s.real for s in realclips.SOURCES if s.category == 'Animation')} have a real asset" in text


def test_a_source_is_an_asset_and_its_renderer_never_a_seed():
    """No two sources share renderer and asset, and two sources of one renderer give other frames from the same
    seed: what tells them apart is their asset, not the random numbers."""
    names = [s.name for s in realclips.SOURCES]
    assert len(names) == len(set(names))
    pairs = [(s.renderer, s.package, s.asset) for s in realclips.SOURCES]
    assert len(pairs) == len(set(pairs))
    by_renderer = {}
    for s in realclips.SOURCES:
        by_renderer.setdefault(s.renderer, []).append(s)
    shared = {r: group for r, group in by_renderer.items() if len(group) > 1}
    assert {"ale", "camera", "editor", "spreadsheet", "cel", "raytracer"} <= set(shared)
    for group in shared.values():
        first = [s.render(3, np.random.default_rng(7)) for s in group[:4]]
        for a, b in zip(first, first[1:]):
            assert a.shape != b.shape or not np.array_equal(a, b)


def test_every_source_records_where_its_asset_comes_from_and_its_licence():
    from vidstudy.extraction.sources import DRAWN, asset_path, provenance

    for s in realclips.SOURCES:
        assert s.licence and s.why and s.subcategory, s.name
        if s.real:
            path = asset_path(s.package, s.asset)
            assert path.is_file() and path.stat().st_size > 0, (s.name, path)
            assert provenance(s).startswith(f"{s.package} ") and provenance(s).endswith(f": {s.asset}")
        else:
            assert s.package == DRAWN and provenance(s) == f"drawn here: {s.asset}"
    real = Counter(s.category for s in realclips.SOURCES if s.real)
    assert min(real[c] for c in ("Flat_Content", "Gaming", "Natural_Content")) >= 15  # Animation: the chapter says why
    rows = realclips.sources_table()
    assert [r["source"] for r in rows] == [s.name for s in realclips.SOURCES]
    assert all(r["package"] and r["asset"] and r["licence"] for r in rows)
    assert [f"{r['package']}: {r['asset']}" for r in rows] == [provenance(s) for s in realclips.SOURCES]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_splits_are_source_disjoint_with_three_test_sources_of_every_class(seed):
    clips = realclips.plan(realclips.Settings(seed=seed))
    split_of = {}
    for c in clips:
        assert split_of.setdefault(c["source"], c["split"]) == c["split"], f"{c['source']} in two splits"
    assert realclips.assign_splits(seed) == split_of
    category = {s.name: s.category for s in realclips.SOURCES}
    counts = Counter((category[s], split) for s, split in split_of.items())
    for c in {"Animation", "Flat_Content", "Gaming", "Natural_Content"}:
        assert counts[c, "test"] == counts[c, "val"] == realclips.TEST_SOURCES == 3
        assert counts[c, "train"] >= 9
    assert any(realclips.assign_splits(s) != split_of for s in range(seed + 1, seed + 4))  # the seed decides


def test_settings_are_checked():
    with pytest.raises(ParameterError, match=r"scale \(--scale\) must lie in \(0, 10\], got 0"):
        realclips.Settings(scale=0)
    with pytest.raises(ParameterError, match=r"seed \(--seed\) must lie in"):
        realclips.Settings(seed=-1)


@pytest.mark.parametrize("frames", [0, -1, 100000])
def test_a_bad_frame_count_is_refused_before_anything_is_rendered(tmp_path, frames):
    with pytest.raises(ParameterError, match=rf"^num_frames \(--frames\) must lie in \[3, 4096\], got {frames}\.$"):
        realclips.build(tmp_path / "rc", TINY, frames=frames, backbone=_colour_backbone(), progress=False)
    assert not (tmp_path / "rc").exists()


@pytest.mark.parametrize("workers", ["-1", "999"])
def test_a_bad_worker_count_is_one_line_before_anything_is_rendered(tmp_path, capsys, workers):
    assert main(["realclips", str(tmp_path / "rc"), "--scale", "0.05", "--workers", workers, "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "workers (--workers) must lie in [0, " in err[0], err
    assert not (tmp_path / "rc").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = [tmp_path_factory.mktemp(f"rc{k}") for k in range(2)]
    # the second tree is rendered by two worker processes: the same bytes as rendering here
    reports = [realclips.build(o, TINY, frames=4, backbone=_colour_backbone(), progress=False, workers=workers)
               for o, workers in zip(out, (0, 2))]
    return out, reports


def test_the_same_seed_gives_the_same_files_rendered_here_or_in_workers(built):
    (a, b), _ = built
    videos = sorted(p.relative_to(a) for p in (a / "videos").rglob("*.mp4"))
    assert len(videos) == len(realclips.SOURCES)
    assert videos == sorted(p.relative_to(b) for p in (b / "videos").rglob("*.mp4"))
    for v in videos:
        assert (a / v).read_bytes() == (b / v).read_bytes(), v
    assert (a / "videos" / "sources.json").read_bytes() == (b / "videos" / "sources.json").read_bytes()
    for split in realclips.SPLITS:
        with h5py.File(a / feature_file_name(split)) as fa, h5py.File(b / feature_file_name(split)) as fb:
            for k in ("features", "labels", "num_frames", "sources", "video_ids"):
                np.testing.assert_array_equal(fa[k][()], fb[k][()])


def test_split_files_pass_inspect_and_name_each_clips_source(built, capsys):
    (a, _), _ = built
    split_of = realclips.assign_splits(TINY.seed)
    by_name = {s.name: s for s in realclips.SOURCES}
    for split in realclips.SPLITS:
        assert main(["inspect", str(a / feature_file_name(split))]) == 0
        ff = FeatureFile(a / feature_file_name(split))
        assert ff.sources is not None and len(ff.sources) == len(ff)
        for source, label, sub, vid in zip(ff.sources, ff.labels, ff.subcategories, ff.video_ids):
            assert split_of[source] == split  # no source outside its split
            assert ff.class_names[label] == by_name[source].category and sub == by_name[source].subcategory
            assert vid.split("/")[-1].startswith(source.replace(":", "-"))
    assert "features (D)" in capsys.readouterr().out


def test_a_second_build_renders_nothing_and_extracts_nothing(built, tmp_path, monkeypatch):
    (a, _), _ = built
    calls = []
    monkeypatch.setattr(realclips, "write_video", lambda *args, **kw: calls.append(1))
    report = realclips.build(a, TINY, frames=4, backbone=_colour_backbone(), progress=False)
    assert calls == [] and all(r.get("up_to_date") for r in report["splits"].values())
    assert realclips.render_tree(a / "videos", TINY, progress=False)["rendered"] is False
    # a tree of other settings is replaced, not added to: nothing of the old tree is left (here into the stub)
    other = tmp_path / "videos"
    other.mkdir()
    (other / realclips.STAMP).write_bytes((a / "videos" / realclips.STAMP).read_bytes())
    (other / "train" / "Gaming" / "sports").mkdir(parents=True)
    (other / "train" / "Gaming" / "sports" / "ale-pong-000.mp4").write_bytes(b"an old clip")
    assert realclips.render_tree(other, realclips.Settings(seed=1, scale=0.05, min_seconds=0.5, max_seconds=1.0),
                                 progress=False)["rendered"] is True
    assert len(calls) == len(realclips.SOURCES) and not list(other.rglob("*.mp4"))
    mine = tmp_path / "mine"
    (mine / "holiday").mkdir(parents=True)
    with pytest.raises(ParameterError, match=r"mine: holds files that vidstudy realclips did not write"):
        realclips.render_tree(mine, TINY, progress=False)
    assert (mine / "holiday").is_dir()
