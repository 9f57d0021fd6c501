"""End-to-end: the smoke book builds, its pages have figures and tables, glued numbers equal the run's."""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import SMOKE_PARAMS, main_run, tree_digest
from test_yt8m import write_mini_yt8m

from vidstudy.errors import VidstudyError
from vidstudy.simulate import shape_config, simulate
from vidstudy.study.book import build_book, toc_chapters
from vidstudy.yt8m.importer import import_yt8m

REPO = Path(__file__).resolve().parents[1]


def test_every_chapter_page_has_figures_and_tables(built):
    root, log = built
    html_dir = root / "_build" / "html"
    for name in ("book/intro", "book/methods", "book/reference", "book/python", "book/api"):
        assert (html_dir / f"{name}.html").exists(), name
    figures = {"01_data": 3, "02_training": 2, "03_per_class_f1": 1, "04_animation_anomaly": 1, "05_ensemble_tta": 1,
               "06_experiments": 2, "07_recipes": 3, "08_models": 1, "09_video_features": 3, "10_real_features": 4,
               "11_classify": 1}
    for chapter in toc_chapters():
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


def test_the_findings_page_shows_every_chapters_finding_and_links_to_it(built):
    """Each finding of ``findings.PAGE`` is glued by its chapter and appears, word for word, on the rendered page with
    a link to that chapter; the page lists exactly those."""
    import ast
    import html

    from conftest import glued

    from vidstudy.study import findings

    root, _ = built
    page = (root / "_build" / "html" / "book" / "findings.html").read_text()
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page)))
    source = (REPO / "book" / "findings.md").read_text()
    assert re.findall(r"::finding_(\w+):s`", source) == [key for _, key in findings.PAGE]
    for chapter, key in findings.PAGE:
        sentence = ast.literal_eval(glued(root / "book" / "executed" / f"{chapter}.ipynb")[findings.PREFIX + key])
        assert re.search(r"\d", sentence), key  # a number, not just words
        assert re.sub(r"\s+", " ", sentence) in text, key
        assert f'href="executed/{chapter}.html"' in page, chapter


def test_the_book_command_reads_its_parameters_file(built):
    """``vidstudy book --smoke --params FILE`` (how the session's book is built): the command ends with its timing,
    and every chapter ran with the file's value over the smoke settings."""
    root, log = built
    assert re.fullmatch(r"book built in \d+\.\d s", log[-1]), log[-3:]
    for chapter in toc_chapters():
        nb = nbformat.read(root / "book" / "executed" / f"{chapter}.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        injected = {}
        exec(cell.source, {}, injected)
        assert (injected["device"], injected["smoke"], injected["members"]) == ("cpu", True, 2), chapter


def test_the_build_profile_accounts_for_every_chapter(built):
    """The smoke book's profile (what benchmarks/book_profile.py prints): a row per chapter whose wall time is the
    runner's own, phases that fit inside it, and the phases where the chapters do them."""
    from vidstudy.profiling import PHASES, format_table, profile_table, read_profile

    root, log = built
    rows = profile_table(read_profile(root / "profile.jsonl"), toc_chapters())
    by = {r["chapter"]: r for r in rows}
    assert [r["chapter"] for r in rows] == ["runner", *toc_chapters(), "jupyter-book", "total"]
    for line in log:
        done = re.match(r"\[book\] (\w+): done in ([\d.]+) s", line)
        if done:
            assert by[done.group(1)]["wall"] == pytest.approx(float(done.group(2)), abs=0.06), line
    for r in rows:
        assert all(r[p] >= 0 for p in PHASES) and r["other"] >= -0.01, r  # the phases fit inside the wall time
    assert by["runner"]["data"] > 0  # the default data, simulated before the chapters
    for chapter in ("02_training", "06_experiments", "07_recipes", "10_real_features"):
        assert by[chapter]["training"] > 0, chapter
    assert by["09_video_features"]["data"] > 0 and by["10_real_features"]["data"] > 0  # clips rendered, extracted
    assert sum(by[c]["prediction"] for c in toc_chapters()) > 0 and sum(by[c]["evaluation"] for c in toc_chapters()) > 0
    assert by["total"]["wall"] == pytest.approx(sum(r["wall"] for r in rows[:-1]))
    assert len(format_table(rows).splitlines()) == len(rows) + 2


def test_unchanged_inputs_skip_execution(built, tmp_path):
    root, _ = built
    log = []
    build_book(root / SMOKE_PARAMS, smoke=True, root=root, echo=log.append, html=False)
    assert all(any(f"{c}: unchanged" in line for line in log) for c in toc_chapters())
    # change one input, a chapter's notebook: only that chapter runs again (of it and those before), and shows it
    chapters = toc_chapters()[:5]
    last = chapters[-1]
    work = tmp_path / "root"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("_build"))
    nb = nbformat.read(work / "notebooks" / f"{last}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A sentence added by the test."))
    nbformat.write(nb, work / "notebooks" / f"{last}.ipynb")
    log = []  # the same data folder as the built book's (a chapter's parameters include its path)
    build_book(work / SMOKE_PARAMS, smoke=True, data=root / "data" / "smoke-seed0", root=work, echo=log.append,
               chapters=chapters, html=False)
    ran = [line.split(":")[0].removeprefix("[book] ") for line in log if ": executing" in line]
    assert ran == [last], log
    assert "notebook" in next(line for line in log if ": executing" in line)
    assert "A sentence added by the test." in (work / "book" / "executed" / f"{last}.ipynb").read_text()


def test_other_data_re_executes_the_chapters_on_runs_of_its_own(built, tmp_path):
    """`vidstudy book --data C` after a build on A (other videos, another feature dimension), and on Y (YouTube-8M's
    records imported), then back to A."""
    root, _ = built
    work = tmp_path / "root"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("_build"))
    runs = work / "runs" / "book-smoke"
    run_a = main_run(runs, "smoke-seed0")
    members_a = tree_digest(run_a / "members")
    first = toc_chapters()[:3]  # data, training, per-class F1 (the evaluation)
    for name in ("C", "Y"):  # simulated, another feature dimension; YouTube-8M's records imported (uint8, D=1024)
        data = tmp_path / name
        if name == "C":
            simulate(data, seed=1, shape=shape_config("smoke", feature_dim=24))
        else:
            write_mini_yt8m(tmp_path / "yt8m", train=10, validate=8)
            import_yt8m([tmp_path / "yt8m"], data, progress=False)
        log = []
        build_book(work / SMOKE_PARAMS, smoke=True, data=data, root=work, echo=log.append, chapters=first, html=False)
        assert [line.split(":")[0] for line in log if "executing" in line] == [f"[book] {c}" for c in first], log
        run = main_run(runs, name)
        results = json.loads((run / "results.json").read_text())
        assert results["data"]["test"] == str(data.resolve() / "test_features_multiscale.h5")
        assert f"runs/book-smoke/{run.name}" in (work / "book" / "executed" / "02_training.ipynb").read_text()
    assert tree_digest(run_a / "members") == members_a  # A's run is kept as it was
    log = []  # back to A (its data and training chapters): nothing is trained
    build_book(work / SMOKE_PARAMS, smoke=True, root=work, echo=log.append, chapters=first[:2], html=False)
    assert all(f"{c}: executing" in " ".join(log) for c in first[:2])
    assert tree_digest(run_a / "members") == members_a
    assert sorted(p.name.split("-")[0] for p in runs.iterdir() if (p / "data.json").exists()) == ["C", "Y", "realclips",
                                                                                                  "smoke"]


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
        build_book(work / SMOKE_PARAMS, smoke=True, root=work, echo=lambda _: None)
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
    for chapter in toc_chapters():
        page = root / "_build" / "html" / "book" / "executed" / f"{chapter}.html"
        shots = {width: Path(tempfile.mkdtemp()) / f"{chapter}-{width}.png" for width in (1280, 390)}  # desktop, phone
        subprocess.run(base + [f"--screenshot={shots[390]}", "--window-size=390,1700", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
        dom = subprocess.run(base + [f"--screenshot={shots[1280]}", "--window-size=1280,1700", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout  # one launch: the page and its DOM
        for width, shot in shots.items():
            assert mpimg.imread(shot).std() > 0.02, f"{chapter} renders blank at {width} px"
        assert "<h1" in dom and "Parameters of this chapter" in dom, chapter
        text = re.sub(r"<[^>]+>", " ", dom)
        assert not re.search(r"Traceback|\b\w+(Error|Exception|Warning):", text), (chapter, re.search(
            r".{80}(Traceback|\b\w+(Error|Exception|Warning):).{80}", text, re.S))
        for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):  # every image the browser was asked to show exists
            if not src.startswith(("data:", "http")):
                target = (page.parent / src.split("?")[0]).resolve()
                assert target.is_file() and target.stat().st_size > 0, (chapter, src)


def test_parameters_from_yaml_smoke_and_data(tmp_path):
    from vidstudy.errors import ParameterError
    from vidstudy.study.book import resolve_params

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


def test_the_gpu_configuration_is_valid_and_a_missing_gpu_is_one_line(tmp_path, monkeypatch):
    import torch

    from vidstudy.errors import ParameterError
    from vidstudy.study.book import resolve_params

    p = resolve_params(REPO / "book" / "params" / "gpu.yaml")
    assert (p["preset"], p["shape"], p["device"], p["run_dir"]) == ("paper", "paper", "auto", "runs/book-gpu")
    assert p["members"] >= 3 and p["epochs"] >= 1
    imported = resolve_params(REPO / "book" / "params" / "gpu.yaml", data=tmp_path / "data-yt8m")
    assert imported["data_dir"] == str(tmp_path / "data-yt8m") and imported["preset"] == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = tmp_path / "p.yaml"
    params.write_text("device: cuda\n")
    with pytest.raises(ParameterError, match=r"^device cuda: this machine has no CUDA GPU that torch can use"):
        resolve_params(params)
    params.write_text("shape: huge\n")
    with pytest.raises(ParameterError, match=r"^shape must be one of default, paper, smoke, got 'huge'\.$"):
        resolve_params(params)



def test_every_chapter_takes_the_runner_parameters_and_ray_without_the_extra_is_one_line(tmp_path, monkeypatch):
    from vidstudy import executor as executors
    from vidstudy.errors import ParameterError
    from vidstudy.study.book import resolve_params
    from vidstudy.study.chapter import defaults

    for chapter in toc_chapters():
        nb = nbformat.read(REPO / "notebooks" / f"{chapter}.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        names = [line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line]
        assigned = {}
        exec(cell.source, {}, assigned)  # the cell papermill injects into: the declared names and defaults, in order
        assert names == list(defaults()) and assigned == defaults(), chapter
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    assert resolve_params(smoke=True)["ray"] == ""  # the smoke book trains here and needs no Ray
    with pytest.raises(ParameterError, match=r"^ray is 'local' .* pip install 'vidstudy\[ray\]', or set ray: \"\""):
        resolve_params()


def test_chapters_that_train_through_ray_show_no_stderr_and_the_runner_prints_only_its_progress(tmp_path):
    """The training chapter on a local Ray cluster (the default book's way): nothing on its page came from stderr or
    names a path of this machine, and the runner's terminal holds its own progress lines only (no Ray stack dumps)."""
    import sys

    from conftest import copy_book_sources

    copy_book_sources(tmp_path)
    (tmp_path / "ray.yaml").write_text("ray: local\n")
    code = ("from pathlib import Path; from vidstudy.study.book import build_book; "
            f"build_book(Path('ray.yaml'), smoke=True, root=Path({str(tmp_path)!r}), "
            "chapters=('02_training',), html=False)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    foreign = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip() and not line.startswith("[book]")]
    assert foreign == [], foreign[:20]
    nb = nbformat.read(tmp_path / "book" / "executed" / "02_training.ipynb", as_version=4)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert [o for o in outputs if o.get("name") == "stderr" or o.get("output_type") == "error"] == []
    text = json.dumps(outputs)
    assert str(tmp_path) not in text and ".venv" not in text and "site-packages" not in text
