import numpy as np
import pytest
import torch

from vidstudy.errors import ParameterError
from vidstudy.models import TemporalClassifier
from vidstudy.tta import get_view, predict_views, view_names


def video(length, t=80, d=3):
    x = np.zeros((t, d), np.float32)
    x[:length] = np.arange(1, length + 1)[:, None]  # frame i holds i + 1; padding is 0
    return x


@pytest.mark.parametrize("length,expected", [
    (73, {"original": 73, "reverse": 73, "speed_up": 36, "speed_down": 109}),
    (9, {"original": 9, "reverse": 9, "speed_up": 4, "speed_down": 13}),
    (2, {"original": 2, "reverse": 2, "speed_up": 1, "speed_down": 3}),
    (1, {"original": 1, "reverse": 1, "speed_up": 1, "speed_down": 1}),
])
def test_view_lengths(length, expected):
    for name, n in expected.items():
        out, out_len = get_view(name)(video(length), length)
        assert out_len == n == out.shape[0], name
        assert np.all(out > 0), f"{name} used padding"


def test_view_indices_for_73_frames():
    x = video(73)
    np.testing.assert_array_equal(get_view("reverse")(x, 73)[0][:, 0], np.arange(73, 0, -1))
    up = get_view("speed_up")(x, 73)[0][:, 0]
    assert up[0] == 1 and up[-1] == 73 and np.all(np.diff(up) >= 2)  # every other frame or so
    down = get_view("speed_down")(x, 73)[0][:, 0]
    assert down[0] == 1 and down[-1] == 73 and set(down) == set(range(1, 74)) and np.all(np.diff(down) >= 0)


def test_random_subsequence_is_ordered_seeded_and_within_bounds():
    x = video(40)
    a, n = get_view("random_subsequence_0")(x, 40)
    b, _ = get_view("random_subsequence_0")(x, 40)
    c, _ = get_view("random_subsequence_1")(x, 40)
    assert 28 <= n <= 40 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.diff(a[:, 0]) > 0)
    one, n1 = get_view("random_subsequence_3")(video(1), 1)
    assert n1 == 1 and one[0, 0] == 1


def test_view_names_and_unknown_views():
    assert view_names() == ["original", "reverse", "speed_up", "speed_down", "random_subsequence_0"]
    assert view_names(0)[-1] == "speed_down" and len(view_names(3)) == 7
    with pytest.raises(ParameterError, match="unknown view 'mirror'"):
        get_view("mirror")


def test_predict_views_matches_single_video_runs(smoke_dir):
    from vidstudy.features import FeatureFile, feature_file_name

    data = FeatureFile(smoke_dir / feature_file_name("val"))
    torch.manual_seed(0)
    model = TemporalClassifier(data.feature_dim, hidden_dim=8, num_lstm_layers=1, num_heads=2, head_dims=(8,)).eval()
    views = view_names()
    probs, logits = predict_views(model, data, views, batch_size=16)
    assert probs.shape == logits.shape == (len(views), len(data), 4)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    for v, name in enumerate(views):
        for i in (0, 17, 59):
            x, n = get_view(name)(data.frames(i), int(data.num_frames[i]))
            with torch.no_grad():
                alone = model(torch.from_numpy(np.ascontiguousarray(x))[None], torch.tensor([n]))[0]
            np.testing.assert_allclose(logits[v, i], alone.numpy(), atol=1e-5)
