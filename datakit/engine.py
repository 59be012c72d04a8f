"""Run per-source jobs on local processes or on a Ray cluster.

A job is a picklable callable plus its arguments that processes one source (a video pair, an image) and publishes
its own results into the output folder (see :class:`datakit.store.OutputFolder`); it returns a small status dict.
The engine only schedules: resume (skipping finished sources) and atomic publication live in the output folder,
so every engine gives the same result.

Thread budget: each worker gets ``threads_per_worker = max(1, cores // workers)`` and sets PyAV decode threads,
OpenCV, Blosc and torch to it, so that ``workers x threads`` never oversubscribes the machine.

Workers die with the run: a process-pool worker asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG`` on Linux) and, before it publishes anything, checks that its parent is still the process
that started it (:func:`ensure_parent_alive`), so a ``kill -9`` of ``datakit build --workers N`` leaves nothing
writing into the folder (whose lock died with the parent). Ray ends the tasks of a driver that died itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from datakit.errors import DatakitError

ENGINES = ("local", "ray")


@dataclass
class Job:
    """One unit of work: ``func(*args, **kwargs)`` for the source ``source_id``."""

    source_id: str
    func: Callable[..., dict[str, Any]]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cores() // max(1, workers))


def limit_threads(threads: int) -> None:
    """Cap the thread pools of the libraries a worker uses (call once at worker start)."""
    os.environ["DATAKIT_THREADS"] = str(threads)
    for name in ("OMP_NUM_THREADS", "BLOSC_NTHREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:  # do not import torch just to limit it
        sys.modules["torch"].set_num_threads(threads)


_PARENT_PID: int | None = None  # in a process-pool worker: the pid of the run that started it
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHANED_EXIT_STATUS = 70  # a worker that outlived its run stops with this status, having published nothing


def _init_worker(threads: int, parent_pid: int) -> None:
    """Process-pool initializer: die with the parent, then cap the thread pools (:func:`limit_threads`)."""
    global _PARENT_PID
    _PARENT_PID = parent_pid
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl in this libc: the check below remains
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    ensure_parent_alive()  # the parent may have died before the request took effect
    limit_threads(threads)


def parent_alive() -> bool:
    """Whether the run that started this worker is still alive (always true outside a process-pool worker)."""
    return _PARENT_PID is None or os.getppid() == _PARENT_PID


def ensure_parent_alive() -> None:
    """Stop this process at once if it is a worker whose run died: called before anything is published."""
    if not parent_alive():
        os._exit(ORPHANED_EXIT_STATUS)


def worker_threads() -> int:
    """The thread budget of the current worker (decoders read this)."""
    return int(os.environ.get("DATAKIT_THREADS", "0")) or available_cores()


def _run_job(job: Job, threads: int) -> dict[str, Any]:
    """Run one job, turning any failure into a status dict so one bad source never stops the others."""
    limit_threads(threads)
    try:
        return job.func(*job.args, **job.kwargs)
    except DatakitError as error:
        return {"source_id": job.source_id, "state": "failed", "error": str(error)}
    except Exception as error:  # a bug, not bad input: keep the traceback for the report
        return {
            "source_id": job.source_id,
            "state": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }


def run_jobs(
    jobs: Iterable[Job],
    *,
    workers: int = 1,
    engine: str = "local",
    desc: str = "sources",
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``jobs`` and return their status dicts in job order.

    ``engine="local"`` with ``workers == 1`` runs in this process (no start-up cost, easy to debug); with more
    workers it uses a spawn-based process pool. ``engine="ray"`` submits each job as a Ray task to the cluster
    that ``ray.init()`` finds (``RAY_ADDRESS``), or to a local Ray instance.
    """
    jobs = list(jobs)
    if engine not in ENGINES:
        raise DatakitError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if workers < 1:
        raise DatakitError(f"--workers must be at least 1, not {workers}")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, unit="source")

    def done(i: int, result: dict[str, Any]) -> None:
        results[i] = result
        bar.update(1)
        if on_result:
            on_result(result)

    try:
        if engine == "ray":
            _run_ray(jobs, workers, done)
        elif workers == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                done(i, _run_job(job, threads_per_worker(1)))
        else:
            import multiprocessing

            threads = threads_per_worker(workers)
            context = multiprocessing.get_context("spawn")
            # the initializer runs before a job (and numpy with it) is unpickled, so BLAS reads the thread cap
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
            ) as pool:
                futures = {pool.submit(_run_job, job, threads): i for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    done(futures[future], future.result())
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _run_ray(jobs: list[Job], workers: int, done: Callable[[int, dict[str, Any]], None]) -> None:
    try:
        import ray
    except ImportError:
        raise DatakitError("--engine ray needs Ray: pip install 'hdrtv-datakit[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            num_cpus=None if os.environ.get("RAY_ADDRESS") else available_cores(),
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, cluster_cpus // max(1, workers))
        remote = ray.remote(num_cpus=threads)(_run_job)
        refs = {remote.remote(job, threads): i for i, job in enumerate(jobs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                done(refs[ref], ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()
