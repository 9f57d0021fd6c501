"""Where jobs run: here (:class:`LocalExecutor`) or on a Ray cluster (:class:`RayExecutor`).

An executor takes callables and knows nothing of what they do; the stages (training,
extraction) hand it their work in one of two shapes:

``map(fn, jobs)``
    ``fn(*job)`` for each job, the results in order. Locally the jobs run one after
    another in this process; on Ray each is a task declaring ``cpus`` CPUs (torch runs that many
    threads in it) and ``gpus`` GPUs (a fraction shares one). A failing job's own error is raised,
    a :class:`~vidstudy.errors.VidstudyError` keeping its one sentence, and the other jobs are cancelled.
``stream(decode, make_worker, items)``
    ``worker(decode(item))`` for each item, yielded in order, where ``worker = make_worker()``.
    Locally ``decode`` runs in ``workers`` processes (none: here) a bounded number ahead and one
    worker runs here; on Ray ``decode`` runs as one-CPU tasks and the workers in a pool of actors
    (one per GPU of the cluster, else one per two CPUs), so the two scale separately.

:func:`from_options` builds one from the command line's ``--ray [ADDRESS]``,
``--cpus-per-member`` and ``--gpus-per-member`` (or the book's ``ray`` parameter).
Ray is the ``ray`` extra (``pip install 'vidstudy[ray]'``); without it, asking for Ray is
refused in one sentence naming the extra. On a cluster, the folders a job reads and writes
must be reachable from every node at the same path, and ``vidstudy`` installed on every node.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections import deque
from typing import Callable, Iterable, Iterator, Sequence

from .errors import ParameterError, VidstudyError

LOCAL = "local"
MAX_GPUS_PER_JOB = 8
CONNECT_TIMEOUT_S = 10


def max_workers() -> int:
    """The most worker processes (loader workers, decoders) a command may ask for: this machine's CPUs."""
    return os.cpu_count() or 1


def ray_available() -> bool:
    """Whether Ray is installed."""
    return importlib.util.find_spec("ray") is not None


class LocalExecutor:
    """Jobs run in this process, one after another; ``stream`` decodes in ``workers`` processes."""

    shares_memory = True  # jobs see this process's objects: they may be handed open files

    def __init__(self, workers: int = 0):
        if not isinstance(workers, int) or not 0 <= workers <= max_workers():
            raise ParameterError(f"workers (--workers) must lie in [0, {max_workers()}] (0 decodes here; at most "
                                 f"this machine's CPUs), got {workers}.")
        self.workers = workers

    def map(self, fn: Callable, jobs: Iterable[tuple]) -> list:
        return [fn(*job) for job in jobs]

    def stream(self, decode: Callable, make_worker: Callable[[], Callable], items: Sequence) -> Iterator:
        worker = make_worker()
        decoded = _decoded(decode, items, self.workers)
        try:
            for value in decoded:
                yield worker(value)
        finally:
            decoded.close()


def _decoded(decode: Callable, items: Sequence, workers: int) -> Iterator:
    """``decode(item)`` per item, in order; ``workers`` processes decode a bounded number ahead."""
    if workers == 0 or not items:
        for item in items:
            yield decode(item)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pending: deque = deque()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        try:
            for item in items:
                pending.append(pool.submit(decode, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _die_with_parent(parent: int) -> None:
    """In a worker process: leave Ctrl-C to the parent, ask Linux to end it when ``parent`` (the process that
    started it) dies, and end it now if that already happened while it was starting, so that a killed command
    leaves no workers behind (elsewhere the pool's own shutdown is all there is)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


class RayExecutor:
    """Jobs run on the Ray cluster at ``address`` (``local``: one started on this machine when first needed)."""

    shares_memory = False  # jobs run in other processes: hand them paths, not open files

    def __init__(self, address: str = LOCAL, cpus: int = 1, gpus: float = 0.0):
        if not isinstance(address, str) or not address:
            raise ParameterError(f"ray (--ray) must be 'local' or a cluster address such as 10.0.0.1:6379, "
                                 f"got {address!r}.")
        if not ray_available():
            raise ParameterError("--ray needs Ray, which is not installed: pip install 'vidstudy[ray]'.")
        if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
            raise ParameterError(f"cpus per member (--cpus-per-member) must be at least 1, got {cpus}.")
        if not 0 <= gpus <= MAX_GPUS_PER_JOB:
            raise ParameterError(f"gpus per member (--gpus-per-member) must lie in [0, {MAX_GPUS_PER_JOB}], got {gpus}.")
        self.address, self.cpus, self.gpus = address, cpus, gpus

    def connect(self):
        """The ``ray`` module, connected to the cluster (quietly: no dashboard, no usage statistics)."""
        import ray

        try:
            if self.address != LOCAL:
                _reachable(self.address)
            if ray.is_initialized():
                return ray
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            options = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            if self.address == LOCAL:
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(num_cpus=max_workers(), **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ParameterError(f"--ray {self.address}: cannot join a Ray cluster there "
                                 f"({str(exc).splitlines()[0]}).") from None
        return ray

    def map(self, fn: Callable, jobs: Iterable[tuple]) -> list:
        ray = self.connect()
        have = ray.cluster_resources()
        if self.gpus > have.get("GPU", 0) or self.cpus > have.get("CPU", 0):  # Ray would wait for them for ever
            raise ParameterError(f"each job asks for {self.cpus} CPUs and {self.gpus:g} GPUs (--cpus-per-member, "
                                 f"--gpus-per-member), but the Ray cluster at {self.address} has "
                                 f"{have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs.")
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(_threaded)
        refs = [task.remote(self.cpus, fn, *job) for job in jobs]
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in unfinished:  # cancelling a task that has finished races Ray's own bookkeeping and can end the
                ray.cancel(ref, force=True)  # driver ("Check failed: it != submissible_tasks_.end()", ray#54846)
            for ref in refs:  # collected, so that Ray does not log the others' errors as unhandled
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 - cancelled or failed too; the first error is the one raised
                    pass
            raise _unwrap(exc) from None

    def stream(self, decode: Callable, make_worker: Callable[[], Callable], items: Sequence) -> Iterator:
        ray = self.connect()
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        actors = gpus if gpus else max(1, cpus // 2)
        holder = ray.remote(_Worker).options(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0)
        pool = [holder.remote(make_worker, 1 if not gpus else max(1, cpus // gpus - 1)) for _ in range(actors)]
        task = ray.remote(num_cpus=1, max_retries=0)(_apply)
        window, ahead = deque(), 2 * (actors + cpus)
        todo = iter(enumerate(items))
        try:
            while True:
                while len(window) < ahead:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    i, item = nxt
                    window.append(pool[i % actors].run.remote(task.remote(decode, item)))
                if not window:
                    return
                try:
                    yield ray.get(window.popleft())
                except ray.exceptions.RayTaskError as exc:
                    raise _unwrap(exc) from None
        finally:
            for actor in pool:  # ends its queued calls too
                ray.kill(actor)


def _reachable(address: str) -> None:
    """Refuse, within :data:`CONNECT_TIMEOUT_S`, an address where nothing listens (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if address.startswith(("ray://", "auto")) or not sep:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"nothing answers at {address}: {exc.strerror or exc}") from None


def _apply(fn: Callable, value):
    return fn(value)


def _threaded(threads: int, fn: Callable, *args):
    """``fn(*args)`` with torch using ``threads`` threads (what the task declared)."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


class _Worker:
    """An actor holding ``make_worker()``; ``run(value)`` is ``worker(value)``."""

    def __init__(self, make_worker: Callable[[], Callable], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.worker = make_worker()

    def run(self, value):
        return self.worker(value)


def _unwrap(exc: Exception) -> Exception:
    """The error a task raised, as raised locally (a :class:`VidstudyError` keeps its one sentence)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else VidstudyError(f"a Ray task failed: {str(exc).splitlines()[0]}")


def shutdown() -> None:
    """Leave the Ray session this process joined or started (nothing without one). A notebook kernel that used one
    calls it before it ends: a kernel still holding Ray is signalled on its way out, and Ray prints a stack dump."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def from_options(ray: str | None = None, cpus: int = 1, gpus: float = 0.0, workers: int = 0):
    """The executor ``--ray [ADDRESS]`` asks for (``None`` or ``""``: here, with ``workers`` decoding processes),
    with ``cpus`` / ``gpus`` per job on Ray (``--cpus-per-member`` / ``--gpus-per-member``)."""
    return RayExecutor(ray, cpus, gpus) if ray else LocalExecutor(workers)
