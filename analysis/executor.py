"""One executor for replicated work: local worker processes, or a Dask distributed cluster.

Bootstrap draws and Monte Carlo replications are many independent tasks. They all run through
:func:`run_tasks`, which maps a function over a list of tasks in batches and returns the results
in task order:

- ``scheduler=None`` (the default): ``jobs`` local worker processes (the machine's cores by
  default; ``jobs=1`` runs in this process), each with one BLAS thread;
- ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``): the same batches run as tasks of a
  Dask distributed cluster (``dask scheduler`` / ``dask worker``, or any deployment of them).
  A worker that dies loses no result: the scheduler reruns its batches (``retries``).

Results do not depend on where a task ran: each task carries its own random stream (a child of
one ``numpy.random.SeedSequence``, :func:`numpy.random.SeedSequence.spawn`), so one process, many
processes and a cluster of any size give the same numbers, bit for bit.

The function and the tasks must be picklable (a module-level function; tasks of plain data).
An exception raised by a task is not swallowed here: it propagates, as the caller decides what a
failed task means (a bootstrap draw that does not converge is counted inside its task; a
Monte Carlo replication catches its own errors and records the reason).

References
----------
Dask Development Team (2016). Dask: Library for dynamic task scheduling. https://dask.org
Rocklin, M. (2015). Dask: Parallel computation with blocked algorithms and task scheduling.
    Proceedings of the 14th Python in Science Conference, 130-136.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.errors import InputError

__all__ = ["run_tasks", "batch_size", "connect"]

TASKS_PER_WORKER = 8  # each worker gets about this many batches: balance against pickling cost


def batch_size(n_tasks: int, workers: int, minimum: int = 1) -> int:
    """Tasks per batch: about ``TASKS_PER_WORKER`` batches per worker, at least ``minimum``."""
    if workers <= 1:
        return max(minimum, 1)
    return max(minimum, -(-n_tasks // (workers * TASKS_PER_WORKER)))


def _run_batch(func: Callable[[Any], Any], batch: Sequence[Any]) -> list:
    """Run one batch with one BLAS thread: the tasks are the parallel unit, threaded BLAS inside
    each would oversubscribe the cores."""
    with threadpool_limits(1):
        return [func(task) for task in batch]


def connect(scheduler, timeout: float = 10.0):
    """A ``distributed.Client`` for ``scheduler`` (an address, or a client returned as is);
    an address where no scheduler answers within ``timeout`` seconds is an input error."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the installation
        raise InputError("--scheduler needs Dask distributed: pip install 'gapscale[dask]' "
                         "(or pip install distributed)") from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as err:
        raise InputError(f"--scheduler {scheduler}: no Dask scheduler answers there ({err}); start one with "
                         "`dask scheduler` and workers with `dask worker ADDRESS`") from None


def run_tasks(func: Callable[[Any], Any], tasks: Sequence[Any], jobs: int | None = None,
              scheduler=None, batch: int | None = None, minimum_batch: int = 1,
              progress: Callable[[int], None] | None = None, retries: int = 3) -> list:
    """Map ``func`` over ``tasks`` in batches, locally or on a Dask cluster; results in task order.

    Parameters
    ----------
    func : callable
        A module-level (picklable) function of one task.
    tasks : sequence
        The tasks (picklable), each carrying what makes it reproducible (its seed).
    jobs : int, optional
        Local worker processes (default: the machine's cores; 1 runs in this process). Ignored
        with a ``scheduler``.
    scheduler : str or distributed.Client, optional
        The address of a Dask scheduler (``tcp://host:8786``) or a client: run there.
    batch : int, optional
        Tasks per batch (default :func:`batch_size`: about 8 batches per worker).
    minimum_batch : int
        The smallest batch :func:`batch_size` may choose (amortises pickling of large tasks).
    progress : callable, optional
        Called with the number of tasks just finished, as batches finish.
    retries : int
        On a cluster, how often a batch whose worker died is rerun elsewhere.

    Returns
    -------
    list
        ``[func(t) for t in tasks]``, in the order of ``tasks``, whatever ran where.
    """
    if scheduler is None:
        jobs = (os.cpu_count() or 1) if jobs is None else jobs
        if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
            raise InputError(f"jobs: a whole number >= 1, got {jobs!r}")
        jobs = int(jobs)
    tasks = list(tasks)
    if not tasks:
        return []
    if scheduler is not None:
        client = connect(scheduler)
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = batch or batch_size(len(tasks), workers, minimum_batch)
        batches = [tasks[i:i + size] for i in range(0, len(tasks), size)]
        return _run_on_dask(client, func, batches, progress, retries,
                            close=not _is_client(scheduler))
    size = batch or batch_size(len(tasks), jobs, minimum_batch)
    batches = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    results: list = []
    jobs = min(jobs, len(batches))  # a worker process costs its start-up (~1.4 CPU-s of imports): none idle
    if jobs == 1:  # one batch (or jobs=1): in this process, no start-up
        for chunk in batches:
            results.extend(_run_batch(func, chunk))
            if progress:
                progress(len(chunk))
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done in pool.map(_run_batch, [func] * len(batches), batches):
            results.extend(done)
            if progress:
                progress(len(done))
    return results


def _is_client(scheduler) -> bool:
    return type(scheduler).__name__ == "Client"


def _run_on_dask(client, func, batches, progress, retries, close: bool) -> list:
    from distributed import as_completed

    try:
        futures = client.map(_run_batch, [func] * len(batches), batches, retries=retries, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list = [None] * len(batches)
        for future in as_completed(futures):
            out[index[future.key]] = future.result()
            if progress:
                progress(len(out[index[future.key]]))
        return [r for chunk in out for r in chunk]
    finally:
        if close:
            client.close()
