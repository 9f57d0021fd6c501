import matplotlib.pyplot as plt

from vidstudy.viz import RealTimeTrainingVisualizer, render_history

HISTORY = {
    "train_f1": [0.5, 0.7, 0.8],
    "val_f1": [0.45, 0.65, 0.75],
    "val_macro_f1": [0.44, 0.64, 0.74],
    "val_per_class_f1": [[0.1, 0.5, 0.6, 0.6], [0.5, 0.7, 0.7, 0.7], [0.6, 0.8, 0.8, 0.8]],
}
NAMES = ["Animation", "Flat_Content", "Gaming", "Natural_Content"]


def test_render_history_draws_both_panels():
    fig = render_history(HISTORY, NAMES, epoch=1, title="m")
    left, right = fig.axes
    assert len(left.get_lines()) == 3
    assert [round(p.get_height(), 6) for p in right.patches] == [50.0, 70.0, 70.0, 70.0]
    labels = [t.get_text() for t in right.texts]
    assert labels == ["50.0%", "70.0%", "70.0%", "70.0%"]
    mean_line = [x for x in right.get_lines() if x.get_linestyle() == "--"]
    assert mean_line and mean_line[0].get_ydata()[0] == 65.0
    plt.close(fig)


def test_visualizer_writes_current_and_per_epoch_files(tmp_path):
    viz = RealTimeTrainingVisualizer(tmp_path / "plots", NAMES, per_epoch=True)
    viz.update(HISTORY)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["current.png", "epoch_003.png"]
    assert (tmp_path / "plots" / "current.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
