"""`vidstudy import-yt8m` on TFRecords written here, independently of the package: the protobuf wire format and the
TFRecord framing encoded by hand, with a CRC-32C computed bit by bit."""

import json
import re

import h5py
import numpy as np
import pytest

from vidstudy.cli import main
from vidstudy.errors import ParameterError, VidstudyError
from vidstudy.features import FeatureFile, load_splits
from vidstudy.yt8m import importer
from vidstudy.yt8m.importer import Settings, import_yt8m, split_of_validate

# --- an independent writer ------------------------------------------------------------------------------------


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 as protobuf writes it
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited field
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _bytes_feature(*values: bytes) -> bytes:  # Feature { BytesList bytes_list = 1 { repeated bytes value = 1 } }
    return _field(1, b"".join(_field(1, v) for v in values))


def _int64_feature(values) -> bytes:  # Feature { Int64List int64_list = 3 { repeated int64 value = 1 [packed] } }
    return _field(3, _field(1, b"".join(_varint(v) for v in values)))


def _map(entries: dict) -> bytes:  # map<string, M> at field 1: entries { key = 1; value = 2 }
    return b"".join(_field(1, _field(1, k.encode()) + _field(2, v)) for k, v in entries.items())


def sequence_example(video_id: str | None, labels, rgb: list[bytes] | None, audio: list[bytes] | None = None) -> bytes:
    context = {}
    if video_id is not None:
        context["id"] = _bytes_feature(video_id.encode())
    if labels is not None:
        context["labels"] = _int64_feature(labels)
    lists = {}
    for name, frames in (("rgb", rgb), ("audio", audio)):
        if frames is not None:  # FeatureList { repeated Feature feature = 1 }
            lists[name] = b"".join(_field(1, _bytes_feature(f)) for f in frames)
    return _field(1, _map(context)) + _field(2, _map(lists))


def write_tfrecord(path, records: list[bytes]) -> None:
    with open(path, "wb") as f:
        for data in records:
            length = len(data).to_bytes(8, "little")
            f.write(length + _masked(length).to_bytes(4, "little") + data + _masked(data).to_bytes(4, "little"))


def video(rng, video_id, labels, frames=5, audio=True):
    rgb = rng.integers(0, 256, (frames, 1024), dtype=np.uint8)
    sound = rng.integers(0, 256, (frames, 128), dtype=np.uint8)
    record = sequence_example(video_id, labels, [r.tobytes() for r in rgb], [a.tobytes() for a in sound] if audio else None)
    return record, rgb, sound


# 2018 ids: Game 0, Video game 1, Cartoon 5, Animation 16, Nature 289, Slide show 308, Wildlife 363, Website 640,
# Screencast 2783; 42 is in no class
LABELS = {"Animation": [16, 42], "Flat_Content": [308], "Gaming": [1, 0], "Natural_Content": [363, 289]}


def write_mini_yt8m(folder, train: int, validate: int, seed: int = 0) -> dict:
    """A train and a validate shard of ``train`` and ``validate`` videos per class (3 to 6 frames, labels of
    :data:`LABELS`) in ``folder``; ``{video id: (class, labels, rgb, audio)}``."""
    rng = np.random.default_rng(seed)
    truth = {}
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("train0000.tfrecord", train), ("validate0000.tfrecord", validate)):
        records = []
        for cls, labels in LABELS.items():
            for k in range(count):
                vid = f"{name[:2]}{cls[:3]}{k}"
                record, rgb, sound = video(rng, vid, labels, frames=3 + k % 4)
                records.append(record)
                truth[vid] = (cls, labels, rgb, sound)
        if name.startswith("train"):
            records += [video(rng, "several", [16, 1])[0], video(rng, "none", [42, 7])[0]]  # both dropped by the rule
        write_tfrecord(folder / name, records)
    return truth


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """A train and a validate shard: per class 3 + 8 videos of known frames; and 2 videos dropped by the rule."""
    root = tmp_path_factory.mktemp("yt8m")
    return {"root": root, "inputs": root / "in", "truth": write_mini_yt8m(root / "in", 3, 8)}


def _dequantized(q: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * np.float32(4 / 255) + np.float32(4 / 512 - 2)


def test_the_crc_here_is_the_castagnoli_one():
    assert _crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C


def test_an_import_gives_the_exact_dequantized_frames_labels_and_ids(shards, tmp_path):
    report = import_yt8m([shards["inputs"]], tmp_path / "out", progress=False)
    files = load_splits(tmp_path / "out")
    seen = {}
    for split, ff in files.items():
        assert ff.quantization == {"scale": 4 / 255, "offset": 4 / 512 - 2} and ff.imported["vocabulary"] == "2018"
        for i, vid in enumerate(ff.video_ids):
            cls, labels, rgb, _ = shards["truth"][vid]
            assert ff.class_names[ff.labels[i]] == cls and ff.source_labels[i] == " ".join(map(str, labels))
            np.testing.assert_array_equal(ff.frames(i), _dequantized(rgb))
            seen[vid] = split
    assert {v[:2] for v, s in seen.items() if s == "train"} == {"tr"} and len(seen) == len(shards["truth"])
    assert report["kept_per_class"] == {c: 11 for c in LABELS}
    assert report["dropped_per_reason"] == {"no_class": 1, "several_classes": 1} and report["records_read"] == 46
    assert report["splits"]["val"] == report["splits"]["test"] == {c: 4 for c in LABELS}  # half of each class
    assert files["train"].subcategories[0] in ("Animation", "Slide show", "Video game", "Game", "Wildlife", "Nature")
    assert not (tmp_path / "out" / ".partial").exists()
    assert json.loads((tmp_path / "out" / "import_report.json").read_text())["splits"] == report["splits"]


def test_rgb_and_audio_give_1152_dims(shards, tmp_path):
    import_yt8m([shards["inputs"]], tmp_path / "out", settings=Settings(features="rgb+audio"), progress=False)
    ff = FeatureFile(tmp_path / "out" / "val_features_multiscale.h5")
    _, _, rgb, sound = shards["truth"][ff.video_ids[0]]
    np.testing.assert_array_equal(ff.frames(0), _dequantized(np.concatenate([rgb, sound], axis=1)))


def test_the_2017_vocabulary_maps_its_own_ids_and_an_id_outside_it_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "in").mkdir()
    write_tfrecord(tmp_path / "in" / "train0.tfrecord", [video(rng, f"a{k}", [6])[0] for k in range(2)]  # Animation
                   + [video(rng, f"g{k}", [2])[0] for k in range(2)])  # Video game
    write_tfrecord(tmp_path / "in" / "validate0.tfrecord", [video(rng, f"v{k}", [6 if k % 2 else 2])[0] for k in range(4)])
    with pytest.raises(VidstudyError, match="would be empty"):  # under 2018, 6 and 2 are in no class
        import_yt8m([tmp_path / "in"], tmp_path / "out18", progress=False)
    report = import_yt8m([tmp_path / "in"], tmp_path / "out17", vocabulary="2017", progress=False,
                         settings=Settings(max_videos=None))
    assert report["kept_per_class"] == {"Animation": 4, "Flat_Content": 0, "Gaming": 4, "Natural_Content": 0}
    (tmp_path / "bad").mkdir()
    write_tfrecord(tmp_path / "bad" / "train0.tfrecord", [video(rng, "x", [16])[0], video(rng, "big", [4000, 16])[0]])
    with pytest.raises(VidstudyError, match=r"train0\.tfrecord: record 1 \(video big\) has label 4000, outside the "
                                            r"2018 vocabulary's ids 0\.\.3861"):
        import_yt8m([tmp_path / "bad"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "train_features_multiscale.h5").exists()


def test_the_val_test_split_is_a_seeded_hash_within_each_class():
    ids = [f"id{k}" for k in range(40)]
    labels = np.array([k % 3 for k in range(40)])
    a, b = split_of_validate(ids, labels, 0, 0.25), split_of_validate(ids, labels, 0, 0.25)
    assert (a == b).all() and not (a == split_of_validate(ids, labels, 1, 0.25)).all()
    for c in range(3):
        assert a[labels == c].sum() == round(0.25 * (labels == c).sum())
    # a video's side depends on its id, not on where it is listed
    order = np.random.default_rng(0).permutation(40)
    shuffled = split_of_validate([ids[k] for k in order], labels[order], 0, 0.25)
    assert (shuffled == a[order]).all()


def _damaged(tmp_path, how: str):
    rng = np.random.default_rng(2)
    records = [video(rng, f"v{k}", [16])[0] for k in range(3)]
    path = tmp_path / "in" / "train0.tfrecord"
    path.parent.mkdir(exist_ok=True)
    if how == "wrong frame length":
        records[1] = sequence_example("v1", [16], [b"\x01" * 1024, b"\x02" * 1000])
    elif how == "missing rgb":
        records[1] = sequence_example("v1", [16], None)
    elif how == "empty rgb":
        records[1] = sequence_example("v1", [16], [])
    elif how == "no labels":
        records[1] = sequence_example("v1", None, [b"\x01" * 1024])
    write_tfrecord(path, records)
    data = bytearray(path.read_bytes())
    if how == "flipped byte":
        second = 8 + 4 + len(records[0]) + 4
        data[second + 12 + 100] ^= 0xFF
    elif how == "truncated":
        data = data[:-50]
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how, message", [
    ("flipped byte", r"record 1 is damaged \(its data CRC does not match\)"),
    ("truncated", r"record 2 is truncated"),
    ("wrong frame length", r"record 1 has an 'rgb' frame of 1000 bytes \(frame 1\), expected 1024"),
    ("missing rgb", r"record 1 has no 'rgb' feature list"),
    ("empty rgb", r"record 1 has an empty 'rgb' feature list"),
    ("no labels", r"record 1 \(video v1\) has no 'labels'"),
])
def test_a_damaged_record_is_one_line_naming_file_and_record_and_nothing_is_written(tmp_path, capsys, how, message):
    path = _damaged(tmp_path, how)
    assert main(["import-yt8m", str(path), str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists() or not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_skip_damaged_counts_what_it_skips(tmp_path):
    path = _damaged(tmp_path, "flipped byte")
    rng = np.random.default_rng(3)
    write_tfrecord(tmp_path / "in" / "validate0.tfrecord", [video(rng, f"w{k}", [16])[0] for k in range(4)])
    report = import_yt8m([path.parent], tmp_path / "out", settings=Settings(skip_damaged=True), progress=False)
    (train,) = [f for f in report["files"] if f["role"] == "train"]
    assert train["damaged"] == [{"record": 1, "reason": "is damaged (its data CRC does not match)"}]
    assert report["damaged"] == 1 and report["splits"]["train"]["Animation"] == 2


def test_test_records_and_other_names_are_refused(tmp_path):
    (tmp_path / "test0000.tfrecord").write_bytes(b"")
    (tmp_path / "other.tfrecord").write_bytes(b"")
    with pytest.raises(ParameterError, match="test records carry no labels"):
        importer.input_files([tmp_path / "test0000.tfrecord"])
    with pytest.raises(ParameterError, match="starts with train or validate"):
        importer.input_files([tmp_path / "other.tfrecord"])
    with pytest.raises(ParameterError, match="does not exist"):
        importer.input_files([tmp_path / "nope"])


def test_an_interrupted_import_resumes_by_file_and_an_unchanged_one_is_reused(shards, tmp_path, monkeypatch):
    read = []
    real = importer.read_records

    def counting(path, skip_damaged):
        read.append(path.name)
        if path.name.startswith("validate") and len(read) == 2:
            raise KeyboardInterrupt
        return real(path, skip_damaged)

    monkeypatch.setattr(importer, "read_records", counting)
    with pytest.raises(KeyboardInterrupt):
        import_yt8m([shards["inputs"]], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "train_features_multiscale.h5").exists()
    import_yt8m([shards["inputs"]], tmp_path / "out", progress=False)
    assert read == ["train0000.tfrecord", "validate0000.tfrecord", "validate0000.tfrecord"]  # train's part was kept
    before = (tmp_path / "out" / "val_features_multiscale.h5").stat().st_mtime_ns
    assert import_yt8m([shards["inputs"]], tmp_path / "out", progress=False)["up_to_date"]
    assert (tmp_path / "out" / "val_features_multiscale.h5").stat().st_mtime_ns == before and len(read) == 3
    again = import_yt8m([shards["inputs"]], tmp_path / "out", settings=Settings(seed=1), progress=False)
    assert "up_to_date" not in again and len(read) == 5  # another seed: imported again


def test_an_imported_folder_trains_predicts_and_evaluates(shards, tmp_path):
    import_yt8m([shards["inputs"]], tmp_path / "out", progress=False)
    with h5py.File(tmp_path / "out" / "train_features_multiscale.h5") as f:
        assert f["features"].dtype == np.uint8
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "out"), str(run), "--members", "1", "--epochs", "1", "--quiet", "--no-plots",
                 "--device", "cpu", "--set", "train.batch_size=4"]) == 0
    assert main(["evaluate", str(run), "--bootstrap", "10", "--subsequences", "1", "--device", "cpu"]) == 0


def test_a_vocabulary_csv_checks_the_mappings_names_and_a_mapping_of_ones_own_is_checked(tmp_path):
    from vidstudy.yt8m.vocabulary import load_mapping, mapping_path

    rows = ["Index,TrainVideoCount,KnowledgeGraphId,Name"] + [f"{i},1,/m/x{i},label {i}" for i in range(3862)]
    names = {0: "Game", 1: "Video game", 5: "Cartoon", 16: "Animation", 27: "Minecraft", 289: "Nature",
             308: "Slide show", 328: "Manga", 363: "Wildlife", 640: "Website", 997: "Web page", 1253: "Video lesson",
             2211: "Landscape", 2783: "Screencast"}
    for i, name in names.items():
        rows[i + 1] = f"{i},1,/m/x{i},{name}"
    csv = tmp_path / "vocabulary.csv"
    csv.write_text("\n".join(rows) + "\n")
    assert load_mapping(str(csv)).vocabulary == "2018"  # 3,862 labels: the 2018 mapping, its names as the CSV's
    rows[17] = "16,1,/m/x16,Anime"
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(ParameterError, match="id 16 is named 'Animation' but the vocabulary names it 'Anime'"):
        load_mapping(str(csv))
    own = json.loads(mapping_path("2018").read_text())
    own["classes"]["Gaming"].append([16, "Animation"])
    (tmp_path / "mine.json").write_text(json.dumps(own))
    with pytest.raises(ParameterError, match="id 16 is listed under both Animation and Gaming"):
        load_mapping("2018", tmp_path / "mine.json")
    own["classes"]["Gaming"][-1] = [5000, "beyond"]
    (tmp_path / "mine.json").write_text(json.dumps(own))
    with pytest.raises(ParameterError, match=r"class Gaming lists id 5000, outside the vocabulary's 0\.\.3861"):
        load_mapping("2018", tmp_path / "mine.json")
    with pytest.raises(ParameterError, match="is for the '2018' vocabulary, not '2017'"):
        load_mapping("2017", mapping_path("2018"))
    del own["classes"]["Gaming"]
    (tmp_path / "mine.json").write_text(json.dumps(own))
    with pytest.raises(ParameterError, match="must list exactly the classes"):
        load_mapping("2018", tmp_path / "mine.json")


def test_the_command_prints_the_splits_and_the_drops(shards, tmp_path, capsys):
    assert main(["import-yt8m", str(shards["inputs"]), str(tmp_path / "out"), "--quiet", "--val-fraction", "0.25"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "train: 12 videos (Animation 3, Flat_Content 3, Gaming 3, Natural_Content 3)"
    assert out[1] == "val: 8 videos (Animation 2, Flat_Content 2, Gaming 2, Natural_Content 2)"
    assert out[3].startswith("46 records read from 2 files; dropped: 1 no class, 1 several classes; 0 damaged skipped")
    assert main(["inspect", str(tmp_path / "out" / "val_features_multiscale.h5")]) == 0
    assert "dtype         uint8 (quantized: read as q * 0.0156863 + -1.99219)" in capsys.readouterr().out
    assert main(["import-yt8m", str(shards["inputs"]), str(tmp_path / "out"), "--quiet", "--val-fraction", "1.5"]) == 1
    assert "val fraction (--val-fraction) must lie in (0, 1), got 1.5." in capsys.readouterr().err


def test_max_videos_keeps_the_first_videos_of_each_file(shards, tmp_path):
    report = import_yt8m([shards["inputs"]], tmp_path / "out", settings=Settings(max_videos=6), progress=False)
    assert [sum(f["kept"].values()) for f in report["files"]] == [6, 6]
    train = FeatureFile(tmp_path / "out" / "train_features_multiscale.h5")
    assert train.video_ids == ["trAni0", "trAni1", "trAni2", "trFla0", "trFla1", "trFla2"]  # the file's first six


def test_the_merge_holds_one_part_open_at_a_time(tmp_path, monkeypatch):
    """However many input files there are, the merge opens their parts one after another (a release has thousands)."""
    rng = np.random.default_rng(4)
    for k in range(6):
        name = f"train{k}.tfrecord" if k < 3 else f"validate{k}.tfrecord"
        write_tfrecord(tmp_path / name,
                       [video(rng, f"{k}{c[:2]}{i}", labels)[0] for c, labels in LABELS.items() for i in range(2)])
    open_now, most = [0], [0]

    class Counting(h5py.File):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])

        def close(self):
            if self.id.valid:
                open_now[0] -= 1
            super().close()

    monkeypatch.setattr(h5py, "File", Counting)
    report = import_yt8m(sorted(tmp_path.glob("*.tfrecord")), tmp_path / "out", progress=False)
    assert len(report["files"]) == 6 and most[0] <= 2  # a part, and the split file being written
