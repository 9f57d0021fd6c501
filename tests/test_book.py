"""End-to-end: the smoke book builds, its pages have figures and tables, glued numbers equal the run's."""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import tree_digest

from vidstudy.study.book import CHAPTERS, build_book
from vidstudy.errors import VidstudyError
from vidstudy.simulate import shape_config, simulate

REPO = Path(__file__).resolve().parents[1]


def _copy_book_sources(dst: Path) -> None:
    for name in ("notebooks", "book"):
        shutil.copytree(REPO / name, dst / name, ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, dst / name)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("bookroot")
    _copy_book_sources(root)
    log = []
    build_book(smoke=True, root=root, echo=log.append)
    return root, log


def _main_run(runs: Path, data_name: str) -> Path:
    """The one ensemble run of a data folder (the recipe study keeps a folder of its own beside it)."""
    (run,) = [p for p in runs.glob(f"{data_name}-*") if (p / "config.json").exists()]
    return run


def glued(notebook: Path) -> dict:
    nb = nbformat.read(notebook, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                out[meta["name"]] = o["data"]["application/papermill.record/text/plain"]
    return out


def test_every_chapter_page_has_figures_and_tables(built):
    root, log = built
    html_dir = root / "_build" / "html"
    for name in ("book/intro", "book/methods", "book/reference", "book/python", "book/api"):
        assert (html_dir / f"{name}.html").exists(), name
    figures = {"01_data": 3, "02_training": 2, "03_per_class_f1": 1, "04_animation_anomaly": 1, "05_ensemble_tta": 1,
               "06_experiments": 2, "07_recipes": 3, "08_video_features": 3}
    for chapter in CHAPTERS:
        page = html_dir / "book" / "executed" / f"{chapter}.html"
        text = page.read_text()
        assert text.count("<table") >= 2, chapter  # the parameter table and at least one result table
        images = re.findall(r'<img[^>]+src="([^"]+)"', text)
        images = [src for src in images if not src.startswith(("data:", "http"))]
        assert len(images) >= figures.get(chapter, 0), chapter
        for src in images:
            path = (page.parent / src).resolve()
            assert path.exists() and path.stat().st_size > 1000, (chapter, src)
        assert "Traceback" not in text and "injected-parameters" not in text, chapter
        assert str(root) not in text and "/tmp/" not in text, chapter  # no path of the build machine
    assert any("jupyter-book build" in line for line in log)


def test_glued_numbers_equal_the_run(built):
    root, _ = built
    run = _main_run(root / "runs" / "book-smoke", "smoke-seed0")
    results = json.loads((run / "results.json").read_text())
    g = glued(root / "book" / "executed" / "03_per_class_f1.ipynb")
    soft = results["methods"]["soft_vote"]["table"]
    assert float(g["soft_vote_macro_f1"]) == pytest.approx(soft["macro_f1"])
    ranking = sorted(results["class_names"], key=lambda c: soft["classes"][c]["f1"])
    assert g["hardest_class"].strip("'") == ranking[0]
    assert float(g["hardest_class_f1"]) == pytest.approx(soft["classes"][ranking[0]]["f1"])
    g6 = glued(root / "book" / "executed" / "06_experiments.ipynb")
    survivors = g6["survivors"].strip("'")
    assert int(g6["n_comparisons"]) == 6
    assert int(g6["n_survivors"]) == (0 if survivors == "none of them" else len(survivors.split(", ")))
    assert 0 <= float(g6["best_experiment_holm_p"]) <= 1
    g5 = glued(root / "book" / "executed" / "05_ensemble_tta.ipynb")
    assert float(g5["tta_gain"]) == pytest.approx(results["methods"]["ensemble_tta"]["vs_soft_vote"]["macro_f1_diff"][0])
    assert int(g5["ece_bins"]) == len(results["calibration"]["ensemble"]["reliability_before"]["counts"])
    assert int(glued(root / "book" / "executed" / "03_per_class_f1.ipynb")["n_boot"].strip("'").replace(",", "")) == results["n_boot"]


def test_power_and_anomaly_figures_equal_the_run(built):
    """Chapter 6's half-width is the widest of its comparisons (checked for the stacking one); chapter 4's
    account of the suppression matches the predictions store."""
    import numpy as np

    from vidstudy.ensemble import soft_vote
    from vidstudy.metrics import ci_half_width
    from vidstudy.predictions import load_predictions
    from vidstudy.study import anomaly

    root, _ = built
    run = _main_run(root / "runs" / "book-smoke", "smoke-seed0")
    results = json.loads((run / "results.json").read_text())
    test = load_predictions(run, "test", check_fresh=False)
    probs = test.view("original")
    base = soft_vote(probs).argmax(1)
    g6 = glued(root / "book" / "executed" / "06_experiments.ipynb")
    stacking = np.array(results["methods"]["stacking"]["test_predictions"])
    assert float(g6["half_width_now"]) >= ci_half_width(test.labels, base, stacking, test.num_classes) - 1e-9
    assert int(g6["n_test_videos"].strip("'").replace(",", "")) == len(test.labels)
    assert float(g6["half_width_former"]) < float(g6["half_width_now"])  # smaller splits are resampled: the smoke test has 60
    g4 = glued(root / "book" / "executed" / "04_animation_anomaly.ipynb")
    animation = test.class_names.index("Animation")
    moves = anomaly.prediction_changes(test.labels, base, soft_vote(anomaly.suppress_class(probs, 0, animation)).argmax(1), animation)
    assert (int(g4["suppress_fixed"]), int(g4["suppress_broken"]), int(g4["suppress_changed"])) == (
        moves["fixed"], moves["broken"], moves["changed"])


def test_recipe_chapter_states_its_bundle_and_its_collapse_attempt(built):
    from vidstudy.runs import member_dir, read_config, read_summary
    from vidstudy.study.recipes import bundled_differences

    root, _ = built
    g7 = glued(root / "book" / "executed" / "07_recipes.ipynb")
    bundle = bundled_differences()
    assert int(g7["n_differences"]) == len(bundle)
    assert {"train.lr", "train.weight_decay", "train.batch_size", "train.monitor"} <= {
        k for k, v in bundle["isolated by"].items() if v.startswith("bundled")}
    (attempt,) = (root / "runs" / "book-smoke").glob("*/recipes/collapse_attempt")
    summaries = [read_summary(member_dir(attempt, i)) for i in range(read_config(attempt).members)]
    assert float(g7["attempt_collapse_rate"]) == pytest.approx(100 * sum(s["collapsed"] for s in summaries) / len(summaries))
    assert read_config(attempt).model.num_lstm_layers == 4 and int(g7["attempt_layers"]) == 4


def test_unchanged_inputs_skip_execution(built, tmp_path):
    root, _ = built
    log = []
    build_book(smoke=True, root=root, echo=log.append, html=False)
    assert all(any(f"{c}: unchanged" in line for line in log) for c in CHAPTERS)
    # change one input, the last chapter's notebook: only that chapter runs again, and shows the change
    work = tmp_path / "root"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("_build"))
    nb = nbformat.read(work / "notebooks" / "08_video_features.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A sentence added by the test."))
    nbformat.write(nb, work / "notebooks" / "08_video_features.ipynb")
    log = []  # the same data folder as the built book's (a chapter's parameters include its path)
    build_book(smoke=True, data=root / "data" / "smoke-seed0", root=work, echo=log.append, html=False)
    ran = [line.split(":")[0].removeprefix("[book] ") for line in log if ": executing" in line]
    assert ran == ["08_video_features"], log
    assert "notebook" in next(line for line in log if ": executing" in line)
    assert "A sentence added by the test." in (work / "book" / "executed" / "08_video_features.ipynb").read_text()


def test_other_data_re_executes_the_chapters_on_runs_of_its_own(built, tmp_path):
    """`vidstudy book --data B` after a build on A: same shapes and another feature dimension; then back to A."""
    root, _ = built
    work = tmp_path / "root"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("_build"))
    runs = work / "runs" / "book-smoke"
    run_a = _main_run(runs, "smoke-seed0")
    members_a = tree_digest(run_a / "members")
    first = CHAPTERS[:3]  # data, training, per-class F1 (the evaluation)
    for name, shape in (("B", "smoke"), ("C", shape_config("smoke", feature_dim=24))):
        data = tmp_path / name
        simulate(data, seed=1, shape=shape)
        log = []
        build_book(smoke=True, data=data, root=work, echo=log.append, chapters=first, html=False)
        assert [line.split(":")[0] for line in log if "executing" in line] == [f"[book] {c}" for c in first], log
        run = _main_run(runs, name)
        results = json.loads((run / "results.json").read_text())
        assert results["data"]["test"] == str(data.resolve() / "test_features_multiscale.h5")
        assert f"runs/book-smoke/{run.name}" in (work / "book" / "executed" / "02_training.ipynb").read_text()
    assert tree_digest(run_a / "members") == members_a  # A's run is kept as it was
    log = []
    build_book(smoke=True, root=work, echo=log.append, chapters=first, html=False)  # back to A: nothing is trained
    assert all(f"{c}: executing" in " ".join(log) for c in first)
    assert tree_digest(run_a / "members") == members_a
    assert sorted(p.name.split("-")[0] for p in runs.iterdir() if (p / "data.json").exists()) == ["B", "C", "smoke"]


def test_failing_chapter_is_named_and_the_previous_book_kept(built, tmp_path):
    root, _ = built
    work = tmp_path / "root"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(root / "_build", work / "_build")
    before = (work / "book" / "executed" / "01_data.ipynb").read_bytes()
    nb = nbformat.read(work / "notebooks" / "01_data.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell('raise ValueError("broken on purpose")'))
    nbformat.write(nb, work / "notebooks" / "01_data.ipynb")
    with pytest.raises(VidstudyError, match=r"chapter 01_data failed in cell \d+: ValueError: broken on purpose"):
        build_book(smoke=True, root=work, echo=lambda _: None)
    assert (work / "book" / "executed" / "01_data.ipynb").read_bytes() == before
    assert (work / "_build" / "html" / "book" / "executed" / "01_data.html").exists()


def test_reference_page_agrees_with_the_shipped_data():
    data = json.loads((REPO / "vidstudy" / "study" / "original_study.json").read_text())
    page = (REPO / "book" / "reference.md").read_text()
    for i, cls in enumerate(data["classes"]):
        row = next(line for line in page.splitlines() if line.startswith(f"| {cls} |"))
        values = [float(v) for v in row.strip("|").split("|")[1:]]
        assert values == [data["validation_per_class_f1_percent"][f"model {m}"][i] for m in range(1, 5)]
    for m in data["test_members"]:
        assert f"| {m['member']} ({m['seed']}) | {m['best_epoch']} / {m['epochs_run']} | {m['test_acc']:.2f} |" in page


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_pages_render_in_headless_chromium(built):
    import matplotlib.image as mpimg

    if _chromium() is None:  # the reason is printed in the summary (addopts -rs)
        pytest.skip("chromium is not installed (apt-get install -y chromium); page check skipped")
    root, _ = built
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}"]
    for name in ("python", "api"):
        page = root / "_build" / "html" / "book" / f"{name}.html"
        dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert "<h1" in dom and ("train_ensemble" in dom), name
    for chapter in CHAPTERS:
        page = root / "_build" / "html" / "book" / "executed" / f"{chapter}.html"
        for width in (1280, 390):  # a desktop window and a phone
            shot = Path(tempfile.mkdtemp()) / f"{chapter}-{width}.png"
            subprocess.run(base + [f"--screenshot={shot}", f"--window-size={width},1700", page.as_uri()],
                           capture_output=True, timeout=120, check=True)
            pixels = mpimg.imread(shot)
            assert pixels.std() > 0.02, f"{chapter} renders blank at {width} px"
        dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert "<h1" in dom and "Parameters of this chapter" in dom, chapter
        text = re.sub(r"<[^>]+>", " ", dom)
        assert not re.search(r"Traceback|\b\w+(Error|Exception|Warning):", text), (chapter, re.search(
            r".{80}(Traceback|\b\w+(Error|Exception|Warning):).{80}", text, re.S))
        for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):  # every image the browser was asked to show exists
            if not src.startswith(("data:", "http")):
                target = (page.parent / src.split("?")[0]).resolve()
                assert target.is_file() and target.stat().st_size > 0, (chapter, src)


def test_parameters_from_yaml_smoke_and_data(tmp_path):
    from vidstudy.study.book import resolve_params
    from vidstudy.errors import ParameterError

    params_file = tmp_path / "p.yaml"
    params_file.write_text("members: 3\nseed_base: 7\n")
    p = resolve_params(params_file, data=tmp_path / "feats", smoke=True)
    assert p["members"] == 3 and p["seed_base"] == 7 and p["smoke"] is True and p["epochs"] == 2
    assert p["data_dir"] == str(tmp_path / "feats") and p["run_dir"] == "runs/book-smoke"
    params_file.write_text("memberz: 3\n")
    with pytest.raises(ParameterError, match=r"unknown chapter parameters \['memberz'\]"):
        resolve_params(params_file)
    params_file.write_text("3\n")
    with pytest.raises(ParameterError, match="must be a YAML mapping of chapter parameters"):
        resolve_params(params_file)
    with pytest.raises(ParameterError, match="nope.yaml: parameters file does not exist"):
        resolve_params(tmp_path / "nope.yaml")


def test_glued_numbers_of_chapters_1_2_and_8_and_what_the_pages_show(built):
    """Each glued value recomputed from the run's own files, and the rendered page shows it as formatted."""
    from vidstudy.extraction.extract import REPORT_NAME
    from vidstudy.features import FeatureFile, feature_file_name, load_splits
    from vidstudy.probe import run_probe
    from vidstudy.runs import member_dir, read_summary

    root, _ = built
    html = lambda chapter: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (  # noqa: E731
        root / "_build" / "html" / "book" / "executed" / f"{chapter}.html").read_text()))
    files = load_splits(root / "data" / "smoke-seed0")
    probe = run_probe(files["train"], files["val"], "mean")
    g1 = glued(root / "book" / "executed" / "01_data.ipynb")
    assert float(g1["probe_val_macro_f1"]) == pytest.approx(100 * probe["macro_f1"])
    assert g1["probe_hardest"].strip("'") == min(probe["per_class_f1"], key=probe["per_class_f1"].get)
    assert f"reaches {100 * probe['macro_f1']:.1f} % macro-F1" in html("01_data")

    run = _main_run(root / "runs" / "book-smoke", "smoke-seed0")
    summaries = [read_summary(member_dir(run, i)) for i in range(2)]
    g2 = glued(root / "book" / "executed" / "02_training.ipynb")
    minutes = sum(s["wall_time_s"] for s in summaries) / 60
    assert int(g2["n_members"]) == 2 and float(g2["train_minutes"]) == pytest.approx(minutes)
    assert f"The 2 members took {minutes:.1f} minutes" in html("02_training")

    demo = root / "runs" / "book-smoke" / "video_demo" / "features"
    report = json.loads((demo / REPORT_NAME).read_text())["splits"]["demo"]
    g8 = glued(root / "book" / "executed" / "08_video_features.ipynb")
    assert int(g8["extract_frames"]) == report["frames_extracted"]
    assert int(g8["frames_per_video"]) == 16  # smoke
    assert int(g8["feature_dim"]) == FeatureFile(demo / feature_file_name("demo")).feature_dim
    assert f"The CNN processed {report['frames_extracted']} frames" in html("08_video_features")

    results = json.loads((run / "results.json").read_text())
    soft = results["methods"]["soft_vote"]["table"]
    assert f"The soft vote’s macro-F1 is {soft['macro_f1']:.1f} %" in html("03_per_class_f1").replace("'", "’")
