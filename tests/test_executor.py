"""analysis.executor: the same results, in task order, from one process, local worker processes
and a real Dask LocalCluster (scheduler + 2 worker processes); a worker killed mid-run loses no
task; a bad scheduler address is an input error."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.executor import batch_size, run_tasks

distributed = pytest.importorskip("distributed")

HS = Path(__file__).parent / "reference" / "holzinger_swineford.csv"
MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"


def _draw(task):
    """A task with its own random stream, as replicated work is written."""
    index, seed = task
    return index, np.random.default_rng(seed).standard_normal(3)


def _die_once(task):
    """Kill the worker process the first time any task runs (a marker file records it)."""
    index, marker = task
    if index == 3 and not os.path.exists(marker):
        Path(marker).write_text("killed")
        os._exit(1)
    return index * index


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as c:
        yield c


def _tasks(n=40):
    seeds = np.random.SeedSequence(7).spawn(n)
    return [(i, s) for i, s in enumerate(seeds)]


def test_batch_size():
    assert batch_size(2000, 1, 25) == 25
    assert batch_size(2000, 2, 25) == 125  # about 8 batches per worker
    assert batch_size(10, 4, 1) == 1


def test_local_processes_give_the_same_results_in_order():
    one = run_tasks(_draw, _tasks(), jobs=1)
    two = run_tasks(_draw, _tasks(), jobs=2, batch=3)
    assert [i for i, _ in one] == list(range(40)) == [i for i, _ in two]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(one, two))


def test_progress_counts_every_task():
    seen = []
    run_tasks(_draw, _tasks(17), jobs=1, batch=5, progress=seen.append)
    assert seen == [5, 5, 5, 2]


def test_dask_cluster_gives_the_same_results(cluster):
    local = run_tasks(_draw, _tasks(), jobs=1)
    seen = []
    remote = run_tasks(_draw, _tasks(), scheduler=cluster.scheduler_address, batch=4, progress=seen.append)
    assert sum(seen) == 40
    assert [i for i, _ in remote] == list(range(40))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(local, remote))


def test_a_worker_killed_mid_run_loses_no_task(cluster, tmp_path):
    marker = str(tmp_path / "killed")
    out = run_tasks(_die_once, [(i, marker) for i in range(12)], scheduler=cluster.scheduler_address,
                    batch=2)
    assert Path(marker).exists()  # a worker did die
    assert out == [i * i for i in range(12)]


def test_bootstrap_is_the_same_bytes_locally_and_on_dask(cluster):
    from analysis.bootstrap import bootstrap_sem
    from analysis.sem.api import fit_model

    data = pd.read_csv(HS)
    fit = fit_model(MODEL, data)
    one = bootstrap_sem(data, fit, draws=50, seed=11, jobs=1)
    dask = bootstrap_sem(data, fit, draws=50, seed=11, scheduler=cluster.scheduler_address)
    assert one.converged == 50
    assert one.draws.to_numpy().tobytes() == dask.draws.to_numpy().tobytes()
    assert dask.converged == one.converged and dask.inadmissible == one.inadmissible


def test_a_scheduler_nobody_answers_is_an_input_error():
    from analysis.executor import connect

    with pytest.raises(InputError, match="no Dask scheduler answers"):
        connect("tcp://127.0.0.1:1", timeout=1)


def test_bad_jobs_is_an_input_error():
    with pytest.raises(InputError, match="jobs"):
        run_tasks(_draw, _tasks(2), jobs=0)


def test_the_sem_command_runs_its_bootstrap_on_a_scheduler(cluster, tmp_path, run_cli):
    """`gapscale sem --scheduler ADDRESS` writes the same parameter table as local processes;
    an address nobody answers is exit 2 with one line."""
    data = pd.read_csv(HS)
    (tmp_path / "data.csv").write_text(data.to_csv(index=False))
    (tmp_path / "model.lavaan").write_text(MODEL + "speed ~ a*visual\ntextual ~ b*speed\nab := a*b\n")
    (tmp_path / "params.yaml").write_text("seed: 5\nsem:\n  missing: listwise\n  bootstrap: 40\n")
    common = ("sem", "--data", tmp_path / "data.csv", "--model", tmp_path / "model.lavaan",
              "--params", tmp_path / "params.yaml")
    code, _, err = run_cli(*common, "--out", tmp_path / "local", "--jobs", "1")
    assert code == 0, err
    code, _, err = run_cli(*common, "--out", tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    local = (tmp_path / "local" / "sem_parameters.csv").read_bytes()
    boot = pd.read_csv(tmp_path / "local" / "sem_parameters.csv").set_index("label").loc["ab"]
    assert boot["boot_pct_lower"] < boot["est"] < boot["boot_pct_upper"]
    assert local == (tmp_path / "dask" / "sem_parameters.csv").read_bytes()
