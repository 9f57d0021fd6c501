import numpy as np
import pytest

from vidstudy.errors import ParameterError
from vidstudy.multiscale import multiscale, multiscale_batch, resample_indices, scale_length, source_positions


def ramp(length, d=2):
    return np.repeat(np.arange(length, dtype=np.float64)[:, None], d, axis=1)


def test_scale_lengths_match_the_original_shapes():
    assert [scale_length(64, s) for s in (1.0, 0.85, 1.15)] == [64, 54, 73]
    out, length = multiscale(ramp(64))
    assert out.shape == (73, 2) and length == 73
    assert scale_length(1, 0.85) == 1


def test_resample_indices_span_the_video():
    idx = resample_indices(64, 54)
    assert idx[0] == 0 and idx[-1] == 63 and len(idx) == 54
    assert np.all(np.diff(idx) >= 1)  # downsampling never repeats a frame
    up = resample_indices(64, 73)
    assert up[0] == 0 and up[-1] == 63 and np.all(np.diff(up) >= 0) and len(set(up)) == 64


def test_aligned_steps_describe_one_moment():
    # On a ramp (frame value = its time), every aligned step stays close to the time it
    # stands for on the common axis; the original's averaging mixes times and zeros.
    out, length = multiscale(ramp(64), mode="aligned")
    target = np.linspace(0, 63, length)
    assert np.max(np.abs(out[:, 0] - target)) < 1.0
    assert out[0, 0] == 0 and out[-1, 0] == 63
    orig, orig_len = multiscale(ramp(64), mode="original")
    assert orig_len == 73
    # the original's last step holds only the 1.15 scale's frame, divided by three
    assert orig[-1, 0] == pytest.approx(63 / 3)
    assert np.max(np.abs(orig[:, 0] - target)) > 20


def test_short_and_single_frame_videos():
    out, length = multiscale(ramp(1))
    assert length == 1 and out.shape == (1, 2)
    out, length = multiscale(ramp(7), scales=(1.0, 0.5))
    assert length == 7 and out.shape == (7, 2)


def test_batch_pads_and_reports_true_lengths():
    feats, lengths = multiscale_batch([ramp(64), ramp(10)], max_frames=73)
    assert feats.shape == (2, 73, 2) and feats.dtype == np.float32
    assert lengths.tolist() == [73, 11]
    assert np.all(feats[1, 11:] == 0)
    with pytest.raises(ParameterError, match="max_frames=50 is shorter"):
        multiscale_batch([ramp(64)], max_frames=50)


@pytest.mark.parametrize("kwargs,match", [
    (dict(frame_features=np.zeros((0, 3))), "frame_features must be a"),
    (dict(frame_features=np.zeros(3)), "frame_features must be a"),
    (dict(frame_features=np.zeros((4, 3)), scales=(1.0, -0.5)), "scales must be positive"),
    (dict(frame_features=np.zeros((4, 3)), mode="nearest"), "mode must be"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        multiscale(**kwargs)


def test_source_positions_show_the_original_mixing_time_and_the_aligned_mode_not():
    orig = source_positions(64, mode="original")
    aligned = source_positions(64)
    assert orig.shape == aligned.shape == (73, 3)
    assert np.isnan(orig[54:, 1]).all() and np.isnan(orig[64:, 0]).all()  # the zero pads of the 0.85 and 1.0 scales
    assert not np.isnan(aligned).any()
    spread = lambda p: np.nanmax(p, axis=1) - np.nanmin(p, axis=1)  # noqa: E731
    assert spread(aligned).max() <= 1.0 and spread(orig)[50] > 10
    # the positions agree with what multiscale() computes: features that encode time give the mean position
    got, _ = multiscale(ramp(64))
    np.testing.assert_allclose(got[:, 0], aligned.mean(axis=1), atol=1e-9)
    got_orig, _ = multiscale(ramp(64), mode="original")
    np.testing.assert_allclose(got_orig[:, 0], np.nan_to_num(orig).sum(axis=1) / 3, atol=1e-9)
