"""A trained run as a classifier of videos: its members, how its evaluation combines them, and the features it takes.

:class:`DeployedRun` opens ``RUN_DIR`` and reads, from what the run itself recorded:

- **the members**: every member's best checkpoint, run at the run's ``train.precision``;
- **the combination**: ``results.json``'s ``deployment`` section (:func:`vidstudy.evaluate.deployment_report`,
  fitted on the run's validation split by ``vidstudy evaluate``): each member's mean over the original's TTA
  views, the members' mean, the temperature, and the confidence threshold. A run not yet evaluated, or evaluated
  for other checkpoints than its members' now, is refused in one sentence;
- **the features**: the extraction record of the run's own train file (the one ``data.json`` names), so that a
  video becomes the features the members were trained on (:func:`feature_recipe`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import calibration as cal
from ..errors import ParameterError, VidstudyError
from ..features import read_provenance
from ..multiscale import DEFAULT_SCALES
from ..predictions import run_split_file
from ..results import deployment, read_results
from ..runs import checkpoints_key, member_checkpoints, read_config


@dataclass(frozen=True)
class FeatureRecipe:
    """How a video becomes features for the run: the backbone and the extraction settings."""

    backbone: Callable  # uint8 [B, H, W, 3] -> [B, D]
    sampling: object  # vidstudy.extraction.video.Sampling
    multiscale: bool
    scales: tuple[float, ...]
    note: str | None  # what differs from the run's own features (the user's stated choice), else None


class _Sequences:
    """Feature sequences in memory, read as :func:`vidstudy.tta.predict_members` reads a feature file."""

    def __init__(self, sequences: Sequence[np.ndarray]):
        self.sequences = list(sequences)
        self.num_frames = np.array([len(x) for x in self.sequences], np.int32)

    def __len__(self) -> int:
        return len(self.sequences)

    def frames(self, i: int) -> np.ndarray:
        return self.sequences[i]


class DeployedRun:
    """The run at ``run_dir`` with its members loaded on ``device`` (a ``torch.device``)."""

    def __init__(self, run_dir, device):
        from ..checkpoint import load_model

        self.run_dir = Path(run_dir)
        checkpoints = member_checkpoints(self.run_dir)  # a missing run or member is one sentence
        self.models = [load_model(path, device) for _, path in checkpoints]  # so is a damaged one
        results_path = self.run_dir / "results.json"
        if not results_path.is_file():
            raise VidstudyError(f"{results_path}: does not exist; run vidstudy evaluate {self.run_dir} first (classify "
                                f"uses the temperature and the confidence threshold it fits on validation).")
        dep = deployment(read_results(results_path))
        if dep.get("checkpoints_sha256") != checkpoints_key(self.run_dir):
            raise VidstudyError(f"{results_path}: was fitted for other checkpoints than the run's members now; run "
                                f"vidstudy evaluate {self.run_dir} again.")
        self.device = device
        first = self.models[0][1]
        self.member_names = [name for name, _ in checkpoints]
        self.class_names = list(first["class_names"])
        self.feature_dim = int(first["feature_dim"])
        self.views, self.method = list(dep["views"]), dep["method"]
        self.temperature = float(dep["temperature"])
        self.confidence = dep["confidence"]
        self.precision = read_config(self.run_dir).train.precision

    @property
    def threshold(self) -> float | None:
        """The confidence at or above which a call is confident (fitted on val; ``None``: none is)."""
        return self.confidence["threshold"]

    def describe(self) -> str:
        """One paragraph: which combination is applied, with what temperature and threshold."""
        c = self.confidence
        if c["threshold"] is None:
            sure = (f"no confidence reached {100 * c['target_accuracy']:.0f} % accuracy on val, so no call is marked "
                    f"confident")
        else:
            sure = (f"confident when the top probability is at least {c['threshold']:.3f} (on val, "
                    f"{100 * c['val']['accuracy']:.1f} % right over {100 * c['val']['coverage']:.0f} % of the videos)")
        return (f"ensemble of {len(self.models)} members x {len(self.views)} views ({', '.join(self.views)}): each "
                f"member's mean over the views, then the members' mean ({self.method}), temperature "
                f"{self.temperature:.3f} fitted on val; {sure}")

    def predict(self, sequences: Sequence[np.ndarray], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """``(ensemble [G, C], members [M, G, C])`` probabilities of feature sequences ``[L, D]``: the members over
        the views, combined as the run's evaluation combines them (the ensemble's temperature-scaled)."""
        from ..tta import predict_members

        probs, logits = predict_members([m for m, _ in self.models], _Sequences(sequences), self.views, batch_size,
                                        0, self.device, self.precision)
        if not np.all(np.isfinite(logits)):
            raise VidstudyError("the members' outputs are not finite on this video's features")
        members = probs.mean(axis=1)  # [M, G, C]: each member's mean over the views
        return cal.calibrated(members.mean(axis=0), self.temperature), members


def feature_recipe(run_dir, backbone: str | Callable | None, device) -> FeatureRecipe:
    """The backbone and settings that make the run's features from a video.

    With ``backbone`` ``None``: those of the extraction record of the run's train file; a run whose features were
    not made by ``vidstudy extract``, or by a backbone that cannot be built by name, is refused in one sentence.
    With ``backbone`` (a built-in name, ``MODULE:FACTORY`` or a backbone itself): that backbone, with the record's
    sampling when there is one (at the backbone's frame size), and a note saying what differs from the run's own
    features.
    """
    from ..extraction.backbone import LITE0_NAME, backbone_from_spec
    from ..extraction.video import Sampling

    train = run_split_file(run_dir, "train")
    provenance = read_provenance(train)
    record = provenance["extraction"]
    recorded = record.get("backbone") if record else None
    if backbone is None:
        if record is None:
            made = "simulated (vidstudy simulate)" if provenance["simulation"] else "not made by vidstudy extract"
            raise ParameterError(f"{train}: the run's features were {made}, so classify cannot make the same features "
                                 f"from videos; pass --backbone NAME|MODULE:FACTORY to classify with a backbone of your "
                                 f"choosing.")
        if recorded != LITE0_NAME:
            raise ParameterError(f"{train}: the run's features were made by the backbone {recorded!r}, which classify "
                                 f"cannot build by name; pass the one extract used as --backbone MODULE:FACTORY.")
    built = backbone if callable(backbone) else backbone_from_spec(backbone or LITE0_NAME, device)
    name = str(getattr(built, "name", type(built).__name__))
    sampling = Sampling(**record["sampling"]) if record else Sampling()
    size = getattr(built, "input_size", None)
    if size is not None and size != sampling.frame_size:
        sampling = replace(sampling, frame_size=int(size))
    note = None
    if record is None:
        note = (f"the run's features were not made by vidstudy extract; using the backbone {name} with the default "
                f"sampling ({sampling.num_frames} frames) as you chose")
    elif name != recorded or sampling != Sampling(**record["sampling"]):
        note = (f"the run's features were made by {recorded} at {record['sampling']['frame_size']} pixels; using "
                f"{name} at {sampling.frame_size} pixels as you chose")
    multiscale = bool(record["multiscale"]) if record else provenance["multi_scale"]
    scales = tuple(float(s) for s in record["scales"]) if record else DEFAULT_SCALES
    return FeatureRecipe(built, sampling, multiscale, tuple(scales), note)
