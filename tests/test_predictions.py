import json
import os
import shutil

import numpy as np
import pytest
import torch

from vidstudy.cli import main
from vidstudy.config import apply_overrides, preset
from vidstudy.errors import VidstudyError
from vidstudy.evaluate import evaluate_run, format_report
from vidstudy.features import load_splits
from vidstudy.predictions import build_predictions, ensure_predictions, load_predictions, store_path
from vidstudy.train import train_ensemble
from vidstudy.tta import view_names

TINY = ["model.hidden_dim=8", "model.num_heads=2", "model.head_dims=8", "train.batch_size=32", "train.epochs=2", "members=3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, smoke_dir):
    run = tmp_path_factory.mktemp("run")
    files = load_splits(smoke_dir, ("train", "val"))
    train_ensemble(apply_overrides(preset("cpu"), TINY), files["train"], files["val"], run, plots=False, quiet=True)
    return run


def test_store_layout(run_dir, smoke_dir):
    build_predictions(run_dir)  # the data folder comes from RUN_DIR/data.json
    val = load_predictions(run_dir, "val")
    assert val.probs.shape == (3, 5, 60, 4) and val.logits.shape == val.probs.shape
    assert val.member_names == ["ensemble_model_0", "ensemble_model_1", "ensemble_model_2"]
    assert val.view_names == view_names() and val.class_names[0] == "Animation"
    assert len(val.video_ids) == 60 and val.subcategories is not None
    np.testing.assert_allclose(val.probs.sum(-1), 1, atol=1e-5)
    assert load_predictions(run_dir, "test").probs.shape[2] == 60


def test_store_that_does_not_match_is_refused_and_stale_store_rebuilt(run_dir, tmp_path):
    build_predictions(run_dir)
    with pytest.raises(VidstudyError, match="lacks views random_subsequence_1, random_subsequence_2, random_subsequence_3;"):
        load_predictions(run_dir, "val", views=view_names(4))
    _, rebuilt = ensure_predictions(run_dir)
    assert not rebuilt
    best = run_dir / "members" / "ensemble_model_1" / "best.pt"
    st = best.stat()
    os.utime(best, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same content: still current
    assert not ensure_predictions(run_dir)[1]
    ckpt = torch.load(best, weights_only=True)
    next(v for v in ckpt["model_state"].values() if v.is_floating_point()).add_(0.01)  # new content
    torch.save(ckpt, best)
    with pytest.raises(VidstudyError, match=r"is stale \(the ensemble_model_1 file .*best.pt is not the one it was made from"):
        load_predictions(run_dir, "val")
    store, rebuilt = ensure_predictions(run_dir)
    assert rebuilt and store["val"].probs.shape[0] == 3
    path = store_path(run_dir, "val")
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["probs"] = d["probs"][:, :2]
    with open(path, "wb") as fh:
        np.savez(fh, **d)
    with pytest.raises(VidstudyError, match="does not match its 3 members, 5 views"):
        load_predictions(run_dir, "val")
    build_predictions(run_dir)


def test_missing_store_and_members_are_named(run_dir, tmp_path):
    with pytest.raises(VidstudyError, match="not a run folder"):
        build_predictions(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "predictions" / "val.npz").unlink()
    with pytest.raises(VidstudyError, match="val.npz: no stored predictions; run vidstudy predict"):
        load_predictions(run, "val")
    (run / "members" / "ensemble_model_2" / "best.pt").unlink()
    with pytest.raises(VidstudyError, match="ensemble_model_2/best.pt: missing, but the run's config names ensemble_model_2"):
        build_predictions(run)


def test_evaluate_writes_results_and_configuration_analysis(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    analysis = json.loads((run_dir / "configuration_analysis.json").read_text())
    assert printed.startswith(format_report(results))
    for method in ("soft_vote", "hard_vote", "ensemble_tta", "class_conditional_tta", "stacking", "class_member_weights"):
        r = results["methods"][method]
        assert set(r["table"]["classes"]) == {"Animation", "Flat_Content", "Gaming", "Natural_Content"}
        assert r["ci"]["macro_f1"][1] <= r["table"]["macro_f1"] <= r["ci"]["macro_f1"][2]
        assert f"{r['ci']['macro_f1'][0]:5.1f}" in printed
    assert results["methods"]["ensemble_tta"]["views_per_video"] == 4  # the original four views
    assert 1 <= results["methods"]["class_conditional_tta"]["views_per_video"] <= 5
    entry = analysis["checkpoint_analysis"][0]
    assert entry["checkpoint"] == "members/ensemble_model_0/best.pt"
    assert set(entry["metrics"]) == {"accuracy", "weighted_f1", "per_class_f1"} and len(entry["metrics"]["per_class_f1"]) == 4
    assert analysis["feature_file_info"]["features_shape"] == [60, 23, 32]
    assert analysis["feature_file_info"]["categories"] == ["Animation", "Flat_Content", "Gaming", "Natural_Content"]


class _LaterClock:
    """The ``time`` module as zipfile sees it, a day later."""

    def __getattr__(self, name):
        import time

        return getattr(time, name)

    def time(self):
        import time

        return time.time() + 86400


def test_a_rebuilt_store_and_results_are_the_same_bytes(run_dir, monkeypatch):
    """Same inputs, same bytes: the store predicted again (a day later) and results.json written again."""
    import zipfile

    from vidstudy.predictions import build_predictions

    files = [run_dir / "predictions" / "val.npz", run_dir / "predictions" / "test.npz", run_dir / "results.json",
             run_dir / "configuration_analysis.json"]
    a = evaluate_run(run_dir, n_boot=100)
    before = [f.read_bytes() for f in files]
    monkeypatch.setattr(zipfile, "time", _LaterClock())
    build_predictions(run_dir)
    b = evaluate_run(run_dir, n_boot=100)
    assert [f.read_bytes() for f in files] == before
    assert json.loads(files[2].read_text()) == {k: v for k, v in a.items() if k not in ("store_rebuilt", "recombination_seconds")}
    assert a["methods"] == b["methods"]


def test_results_schema_is_symmetric_and_read_through_one_module(run_dir, tmp_path):
    from vidstudy.errors import VidstudyError
    from vidstudy.results import SCHEMA, best_per_class, member_tables, read_results

    results = evaluate_run(run_dir, n_boot=50)
    assert read_results(run_dir)["schema"] == SCHEMA == results["schema"]
    for member, r in results["members"].items():
        assert set(r["val"]) == {"table"} and set(r["test"]) == {"table", "ci"} and set(r["test_tta"]) == {"table"}
    for split in ("val", "test"):
        tables = member_tables(results, split)
        assert results["best_per_class"][split] == best_per_class(tables, results["class_names"])
    assert results["calibration"]["ensemble"]["bins"] == len(results["calibration"]["ensemble"]["reliability_before"]["counts"])
    old = tmp_path / "results.json"
    old.write_text(json.dumps({**results, "schema": 1}))
    with pytest.raises(VidstudyError, match=r"results\.json: results written by another version of vidstudy \(schema 1"):
        read_results(old)


def test_a_class_is_found_by_name_or_named_missing():
    from vidstudy.errors import ParameterError
    from vidstudy.features import class_index

    assert class_index(["Flat_Content", "Animation"], "Animation") == 1
    with pytest.raises(ParameterError, match=r"^this dataset has no Animation class \(.*\); its classes are cats, dogs\.$"):
        class_index(["cats", "dogs"], "Animation")


def test_evaluate_on_a_current_store_runs_no_network(run_dir, monkeypatch):
    """Recombination is array code over the store: with the store current, building or running a model fails
    the test."""
    import vidstudy.models
    import vidstudy.tta

    evaluate_run(run_dir, n_boot=20)  # the store is current from here on

    def forbidden(*args, **kwargs):
        raise AssertionError("evaluate ran a network")

    monkeypatch.setattr(vidstudy.models, "build_model", forbidden)
    monkeypatch.setattr(vidstudy.tta, "predict_views", forbidden)
    monkeypatch.setattr(torch.nn.Module, "__call__", forbidden)
    results = evaluate_run(run_dir, n_boot=20)
    assert results["store_rebuilt"] is False and "stacking" in results["methods"]


def test_other_views_rebuild_the_store_and_a_rebuild_is_deterministic(run_dir, capsys):
    from vidstudy.predictions import ensure_predictions, load_predictions
    from vidstudy.tta import view_names

    store, _ = ensure_predictions(run_dir, view_names(1))
    first = {s: p.probs.copy() for s, p in store.items()}
    store, rebuilt = ensure_predictions(run_dir, view_names(1))
    assert rebuilt is False
    store, rebuilt = ensure_predictions(run_dir, view_names(1), force=True)  # same inputs: the same numbers
    assert rebuilt and all(np.array_equal(first[s], store[s].probs) for s in first)
    assert main(["predict", str(run_dir), "--subsequences", "3"]) == 0
    assert load_predictions(run_dir, "test").view_names == view_names(3)
    assert "predicted 7 views" in capsys.readouterr().out
    store, rebuilt = ensure_predictions(run_dir)  # no views asked: the store's own are kept
    assert rebuilt is False and store["val"].view_names == view_names(3)
    assert np.array_equal(store["test"].probs[:, :5], first["test"][:, :5])  # the shared views are the same numbers


def test_early_stopping_waits_patience_epochs_after_the_best(smoke_dir, tmp_path):
    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), TINY + ["members=1", "train.epochs=12", "train.patience=2", "train.lr=0.05"])
    (summary,) = train_ensemble(cfg, files["train"], files["val"], tmp_path / "run", plots=False, quiet=True)
    history = json.loads((tmp_path / "run" / "members" / "ensemble_model_0" / "history.json").read_text())
    scores = history["val_macro_f1"]
    best = int(np.argmax(scores))  # the first epoch with the highest score
    assert summary["best_epoch"] == best + 1
    assert summary["stopped_early"]  # on this data the run peaks early (epoch 2 of 12)
    assert summary["epochs_run"] == best + 1 + 2 == len(scores)  # exactly patience epochs after the best
    assert all(s <= scores[best] for s in scores[best + 1:])
