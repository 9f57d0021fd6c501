"""`vidstudy.runs` and `vidstudy.atomic`: where a run's artifacts live, how they are written and how they are read back."""

import json
import os
import stat

import numpy as np
import pytest

from vidstudy.atomic import atomic_path, read_json, write_json, write_npz, write_text
from vidstudy.config import preset
from vidstudy.errors import VidstudyError
from vidstudy.runs import (
    CONFIG_FILE,
    DATA_FILE,
    member_checkpoints,
    member_dir,
    member_name,
    read_config,
    read_data_record,
    read_summary,
)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_replaces_only_on_success_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_text("first")
    assert target.read_text() == "first" and _names(target.parent) == ["file.txt"]
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the second")
            raise KeyError("the writer fails")
    assert target.read_text() == "first" and _names(target.parent) == ["file.txt"]


def test_atomic_files_get_the_usual_mode_not_the_temporary_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failing_rename_names_the_target_not_the_temporary(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("a directory that is not empty cannot be replaced by a file")
    with pytest.raises(OSError) as info:
        write_text(target, "x")
    assert info.value.filename == str(target) and _names(tmp_path) == ["taken"]


def test_write_json_is_strict_json_with_nan_and_infinities_as_null(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}], "d": (2, 3)})
    text = path.read_text()
    assert text.endswith("}\n")
    value = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert value == {"a": None, "b": [1.5, None, {"c": None}], "d": [2, 3]}


def test_write_npz_reads_back_and_the_same_arrays_give_the_same_bytes(tmp_path):
    arrays = {"probs": np.random.default_rng(0).random((2, 3, 4), dtype=np.float32), "names": np.array(["a", "bc"]),
              "fingerprint": np.array(json.dumps({"k": 1}))}
    a, b = write_npz(tmp_path / "a.npz", arrays), write_npz(tmp_path / "b.npz", dict(reversed(list(arrays.items()))))
    with np.load(a, allow_pickle=False) as z:
        assert z.files == ["probs", "names", "fingerprint"]
        for k, v in arrays.items():
            np.testing.assert_array_equal(z[k], v)
            assert z[k].dtype == v.dtype
    assert write_npz(tmp_path / "c.npz", arrays).read_bytes() == a.read_bytes() != b.read_bytes()  # order is content
    with pytest.raises(ValueError):  # object arrays would need pickle to read: refused, and nothing left
        write_npz(tmp_path / "d.npz", {"x": np.array([{}], dtype=object)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "c.npz"]


@pytest.mark.parametrize("content, kind, required, message", [
    (None, dict, (), r"missing \(the thing\)\.$"),
    (b"\xff\xfe\x00", dict, (), r"not a text file \(the thing\)\.$"),
    (b'{"a": 1,', dict, (), r"not valid JSON \(Expecting property name enclosed in double quotes at line 1\); "
                            r"it should hold the thing\.$"),
    (b"[1, 2]", dict, (), r"holds a JSON list, not the object of the thing\.$"),
    (b'{"a": 1}', list, (), r"holds a JSON dict, not the list of the thing\.$"),
    (b'{"a": 1}', dict, ("a", "b", "c"), r"lacks 'b', 'c' \(the thing\)\.$"),
])
def test_read_json_names_the_file_and_what_is_wrong(tmp_path, content, kind, required, message):
    path = tmp_path / "f.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VidstudyError, match="^" + str(path).replace(".", r"\.") + ": " + message):
        read_json(path, "the thing", kind=kind, required=required)


def test_read_json_returns_what_is_there(tmp_path):
    (tmp_path / "f.json").write_text('{"a": [1, null], "b": "é"}', encoding="utf-8")
    assert read_json(tmp_path / "f.json", "x", required=("a", "b")) == {"a": [1, None], "b": "é"}
    (tmp_path / "g.json").write_text("[3]")
    assert read_json(tmp_path / "g.json", "x", kind=list) == [3]


def _run(tmp_path, members):
    run = tmp_path / "run"
    cfg = preset("cpu")
    cfg.members = members
    write_json(run / CONFIG_FILE, cfg.to_dict())
    return run


def test_member_layout_and_checkpoints_are_exactly_the_configs_members(tmp_path):
    assert member_name(3) == "ensemble_model_3"
    run = _run(tmp_path, 2)
    assert member_dir(run, 1) == run / "members" / "ensemble_model_1"
    for i in range(3):  # a third folder left by a larger run is not a member of this one
        member_dir(run, i).mkdir(parents=True)
        (member_dir(run, i) / "best.pt").write_bytes(b"")
    assert read_config(run).members == 2
    assert member_checkpoints(run) == [("ensemble_model_0", member_dir(run, 0) / "best.pt"),
                                       ("ensemble_model_1", member_dir(run, 1) / "best.pt")]
    (member_dir(run, 1) / "best.pt").unlink()
    with pytest.raises(VidstudyError, match=r"ensemble_model_1/best\.pt: missing, but the run's config names "
                                            r"ensemble_model_1; finish the run with vidstudy train --resume\.$"):
        member_checkpoints(run)
    with pytest.raises(VidstudyError, match=r"nothing: not a run folder \(no config\.json\); run vidstudy train first\.$"):
        member_checkpoints(tmp_path / "nothing")


def test_a_config_that_is_not_a_config_is_one_error_naming_it(tmp_path):
    run = tmp_path / "run"
    write_json(run / CONFIG_FILE, {"members": "three"})
    with pytest.raises(VidstudyError, match=r"config\.json"):
        read_config(run)


def test_the_data_record_and_a_summary_are_checked_for_what_their_readers_use(tmp_path):
    entry = {"path": "x.h5", "size": 1, "sha256": "0" * 64}
    write_json(tmp_path / DATA_FILE, {"files": {"train": entry, "val": entry}})
    assert set(read_data_record(tmp_path)["files"]) == {"train", "val"}
    for bad in ({"files": {"train": entry}}, {"files": {"train": entry, "val": {"path": "x.h5"}}}, {"files": []}):
        write_json(tmp_path / DATA_FILE, bad)
        with pytest.raises(VidstudyError,
                           match=r"data\.json: does not record the run's split files .* must be trained again\)\.$"):
            read_data_record(tmp_path)
    member = tmp_path / "m"
    write_json(member / "summary.json", {"member": "ensemble_model_0", "seed": 42})
    with pytest.raises(VidstudyError, match=r"summary\.json: lacks 'best_epoch', .*'lost_class_names' "
                                            r"\(a finished member's summary\)\.$"):
        read_summary(member)


def test_a_folder_that_refuses_the_temporary_file_is_named_by_the_target(tmp_path, monkeypatch):
    import tempfile

    def refuse(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}abc123{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only run folder does (root ignores file modes)
    with pytest.raises(PermissionError) as info:
        write_json(tmp_path / "results.json", {})
    assert info.value.filename == str(tmp_path / "results.json") and info.value.strerror == "Permission denied"
