"""Running on a Ray cluster: ``--ray [ADDRESS]`` of ``extract`` and ``train``, and the book's ``ray`` parameter.

:func:`connect` joins the cluster at ``ADDRESS`` (``ray start --head`` prints it), or with ``local`` starts one on
this machine (every CPU, no dashboard, no usage statistics, no auth token written under ``~/.ray``). Ray is the
``ray`` extra (``pip install 'vidstudy[ray]'``); without it, ``--ray`` is refused in one sentence naming the
extra.

What runs where:

- **Training** (:func:`train_members`): each member is a task declaring ``cpus`` CPUs (torch runs that many
  threads in it) and ``gpus`` GPUs (a fraction shares one), written into the run's usual layout with the
  usual resume rules. A CPU result depends on torch's thread count (its float reductions are split by thread),
  so a member trained through Ray with ``cpus`` CPUs equals one trained locally with as many threads.
- **Extraction** (:func:`embed_videos`): decoding runs as CPU tasks and the backbone in a pool of actors (one
  GPU each where the cluster has GPUs, else one CPU each), so the two scale separately; the driver writes each
  video's partial file and the split files as the local path does.

The run and output folders must be reachable from every node at the same path (a shared file system), and
``vidstudy`` installed on every node.
"""

from __future__ import annotations

import importlib.util
import os
from collections import deque
from typing import Callable, Iterator, Sequence

from .errors import ParameterError, VidstudyError

LOCAL = "local"


def available() -> bool:
    """Whether Ray is installed."""
    return importlib.util.find_spec("ray") is not None


def require(address: str) -> None:
    """Refuse, before anything runs, an address that is not one or a machine without Ray."""
    if not isinstance(address, str) or not address:
        raise ParameterError(f"ray (--ray) must be 'local' or a cluster address such as 10.0.0.1:6379, got {address!r}.")
    if not available():
        raise ParameterError("--ray needs Ray, which is not installed: pip install 'vidstudy[ray]'.")


def connect(address: str):
    """The ``ray`` module, connected to the cluster at ``address`` (``local``: one started on this machine)."""
    require(address)
    import ray

    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        if address == LOCAL:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(num_cpus=os.cpu_count() or 1, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ParameterError(f"--ray {address}: cannot join a Ray cluster there ({str(exc).splitlines()[0]}).") from None
    return ray


def _unwrap(ray, exc: Exception) -> Exception:
    """The error a task raised, as raised locally (a :class:`VidstudyError` keeps its one sentence)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else VidstudyError(f"a Ray task failed: {str(exc).splitlines()[0]}")


def _train_member(threads: int, config: dict, train_path: str, val_path: str, seed: int, out_dir: str,
                  kwargs: dict) -> dict:
    import torch

    from .config import RunConfig
    from .features import FeatureFile
    from .train import train_single_model

    torch.set_num_threads(threads)
    return train_single_model(RunConfig.from_dict(config), FeatureFile(train_path), FeatureFile(val_path), seed,
                              out_dir, **kwargs)


def train_members(address: str, config, train_path, val_path, jobs: Sequence[dict], cpus: int = 1,
                  gpus: float = 0.0) -> list[dict]:
    """Train ``jobs`` (each ``seed``, ``out_dir`` and :func:`vidstudy.train.train_single_model` keywords) as Ray
    tasks of ``cpus`` CPUs and ``gpus`` GPUs each; returns their summaries in order."""
    if not isinstance(cpus, int) or cpus < 1:
        raise ParameterError(f"cpus per member (--cpus-per-member) must be at least 1, got {cpus}.")
    if not 0 <= gpus <= 8:
        raise ParameterError(f"gpus per member (--gpus-per-member) must lie in [0, 8], got {gpus}.")
    ray = connect(address)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_train_member)
    cfg = config.to_dict()
    refs = [task.remote(cpus, cfg, str(train_path), str(val_path), job["seed"], str(job["out_dir"]), job["kwargs"])
            for job in jobs]
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        for ref in refs:
            ray.cancel(ref, force=True)
        for ref in refs:  # collected, so that Ray does not log the others' errors as unhandled
            try:
                ray.get(ref)
            except Exception:  # noqa: BLE001 - cancelled or failed too; the first error is the one raised
                pass
        raise _unwrap(ray, exc) from None


class _Embedder:
    """A backbone held by an actor: ``embed((frames, reason))`` -> ``(features or None, reason, frames)``."""

    def __init__(self, backbone, batch_size: int, threads: int):
        import torch

        torch.set_num_threads(threads)
        if backbone is None:
            from .device import resolve_device
            from .extraction.backbone import lite0_backbone

            backbone = lite0_backbone(device=resolve_device("auto", "device"))
        self.backbone, self.batch_size = backbone, batch_size

    def embed(self, decoded):
        from .extraction.extract import _frame_features

        frames, reason = decoded
        if frames is None:
            return None, reason, 0
        return _frame_features(self.backbone, frames, self.batch_size), None, len(frames)


def embed_videos(address: str, paths: Sequence, sampling, backbone: Callable | None, batch_size: int
                 ) -> Iterator[tuple]:
    """Yield ``(features or None, skip reason, frames)`` for each path, in order: decoding as CPU tasks, the
    backbone (``None``: EfficientNet-Lite0 built in each actor, on its GPU where it has one) in a pool of actors,
    one per GPU of the cluster, else one per two CPUs."""
    from .extraction.video import read_frames_or_reason

    ray = connect(address)
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    actors = gpus if gpus else max(1, cpus // 2)
    embedder = ray.remote(_Embedder).options(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0)
    pool = [embedder.remote(backbone, batch_size, 1 if not gpus else max(1, cpus // gpus - 1)) for _ in range(actors)]
    decode = ray.remote(num_cpus=1, max_retries=0)(read_frames_or_reason)
    window, ahead = deque(), 2 * (actors + cpus)
    todo = iter(enumerate(paths))
    try:
        while True:
            while len(window) < ahead:
                nxt = next(todo, None)
                if nxt is None:
                    break
                i, path = nxt
                window.append(pool[i % actors].embed.remote(decode.remote(str(path), sampling)))
            if not window:
                return
            try:
                yield ray.get(window.popleft())
            except ray.exceptions.RayTaskError as exc:
                raise _unwrap(ray, exc) from None
    finally:
        for actor in pool:  # ends its queued calls too
            ray.kill(actor)
