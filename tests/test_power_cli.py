"""`gapscale power`: outputs, bad input (exit 2, one line), the same bytes locally and on a Dask
LocalCluster, and the instrument's own population (defects, screens, the default model)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
POP = "f1 =~ 0.7*x1 + 0.7*x2 + 0.7*x3\nf2 =~ 0.7*y1 + 0.7*y2 + 0.7*y3\nf2 ~ 0.25*f1\nf2 ~~ 0.9375*f2\n"
MODEL = "f1 =~ x1 + x2 + x3\nf2 =~ y1 + y2 + y3\nf2 ~ b*f1\n"
HYP = "H1:\n  statement: f1 raises f2\n  expect: {b: positive}\n"
OUTPUTS = ("power.json", "power_by_n.csv", "power_hypotheses.csv", "power_paths.csv", "power_replications.csv",
           "power_curve.png", "power_curve.svg")


@pytest.fixture
def study(tmp_path):
    (tmp_path / "pop.lavaan").write_text(POP)
    (tmp_path / "model.lavaan").write_text(MODEL)
    (tmp_path / "hyp.yaml").write_text(HYP)
    (tmp_path / "params.yaml").write_text("seed: 5\npower:\n  n: [120, 240]\n  replications: 6\n")
    return tmp_path


def _args(d, out, *extra):
    return ["power", "--params", d / "params.yaml", "--out", d / out, "--model", d / "model.lavaan",
            "--hypotheses", d / "hyp.yaml", "--population", d / "pop.lavaan", *extra]


def test_power_outputs(study, run_cli):
    code, out, err = run_cli(*_args(study, "out", "--jobs", "1"))
    assert code == 0, err
    assert "H1" in out
    for name in OUTPUTS:
        assert (study / "out" / name).stat().st_size > 0
    metrics = json.loads((study / "out" / "power.json").read_text())
    assert metrics["n"] == [120, 240] and metrics["replications"] == 6 and metrics["seed"] == 5
    assert set(metrics["required_n"]) == {"H1"} and metrics["recovery_metric"] == "est"
    by_n = pd.read_csv(study / "out" / "power_by_n.csv")
    assert list(by_n["n"]) == [120, 240] and (by_n["replications"] == 6).all()
    assert {"power_H1", "convergence_rate", "chisq_rejection_rate", "cfi_q50", "rmsea_q95",
            "rmsea_power_close"} <= set(by_n.columns)
    reps = pd.read_csv(study / "out" / "power_replications.csv")
    assert len(reps) == 12 and {"est.b", "se.b", "pvalue.b", "est.f2=~y2", "verdict.H1"} <= set(reps.columns)
    paths = pd.read_csv(study / "out" / "power_paths.csv")
    b = paths[paths["name"] == "b"]
    assert b["population"].tolist() == pytest.approx([0.25, 0.25]) and (b["hypotheses"] == "H1").all()
    # the hypothesis' power is the share of its verdicts that are "supported"
    h = pd.read_csv(study / "out" / "power_hypotheses.csv")
    share = reps.groupby("n")["verdict.H1"].apply(lambda v: (v == "supported").mean())
    assert list(h["power"]) == pytest.approx(list(share))


@pytest.mark.parametrize("params,message", [
    ("power:\n  n: [300, 200]\n", "power.n: sample sizes must increase"),
    ("power:\n  replications: -1\n", "power.replications"),
    ("power:\n  replications: 0\n  analytic: false\n", "nothing to compute"),
    ("power:\n  analytic_rows: 10\n", "power.analytic_rows"),
    ("power:\n  samples: 3\n", "power.samples: unknown key"),
    ("power:\n  estimator: XYZ\n", "power.estimator"),
    ("power:\n  target: 80\n", "power.target"),
])
def test_bad_params_exit_2_with_one_line(study, run_cli, params, message):
    (study / "params.yaml").write_text(params)
    code, out, err = run_cli(*_args(study, "out"))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_population_model_errors_exit_2(study, run_cli):
    (study / "pop.lavaan").write_text("f =~ 1*x1 + 1*x2\nx1 ~~ -2*x1\n")
    code, _, err = run_cli(*_args(study, "out"))
    assert code == 2 and "pop.lavaan" in err and "not positive definite" in err
    code, _, err = run_cli("power", "--params", study / "params.yaml", "--out", study / "o2")
    assert code == 2 and "--instrument" in err


def test_same_bytes_locally_and_on_a_dask_cluster(study, run_cli):
    from distributed import LocalCluster

    code, _, err = run_cli(*_args(study, "local", "--jobs", "2"))
    assert code == 0, err
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster:
        code, _, err = run_cli(*_args(study, "dask", "--scheduler", cluster.scheduler_address))
    assert code == 0, err
    for name in ("power.json", "power_by_n.csv", "power_hypotheses.csv", "power_paths.csv",
                 "power_replications.csv"):
        assert (study / "local" / name).read_bytes() == (study / "dask" / name).read_bytes(), name


def test_instrument_population_with_defects_and_screens(tmp_path, run_cli):
    """The default instrument, model and hypotheses, params simulate: and clean: (2 N x 2
    replications): the screens and listwise deletion leave fewer rows than invited."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    small = {"seed": 9, "simulate": params["simulate"], "clean": params["clean"], "invariance": params["invariance"],
             "split": params["split"], "power": {"n": [300, 600], "replications": 2, "missing": "listwise"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small))
    code, out, err = run_cli("power", "--instrument", ROOT / "instrument" / "sustainability_gap.yaml",
                             "--params", tmp_path / "params.yaml", "--out", tmp_path / "out", "--jobs", "1",
                             "--model", ROOT / "instrument" / "sustainability_gap.lavaan",
                             "--hypotheses", ROOT / "instrument" / "sustainability_gap.hypotheses.yaml")
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "power.json").read_text())
    assert metrics["recovery_metric"] == "std_all" and metrics["clean"] is True
    assert set(metrics["required_n"]) == {"H1", "H2", "H3", "H4", "H5", "H6", "H8"}  # H7: invariance, not here
    # H7: its group contrasts' analytic power (Holm jointly needs more than either part alone)
    h7 = metrics["other_hypotheses"]["H7"]
    assert "no power" in h7["measurement"] and [c["parameter"] for c in h7["contrast_power"]["parts"]] == ["r2", "r5"]
    joint, alone = h7["contrast_power"]["n_required"], [c["n_required"] for c in h7["contrast_power"]["parts"]]
    assert 500 < max(alone) < joint < h7["n_invited"], (alone, joint, h7["n_invited"])
    used = {int(k): v["mean_n_used"] for k, v in metrics["convergence"].items()}
    # 14% excluded by design (3% each of four defects, 2% duplicates); of the rest about half are
    # incomplete: skipped cells (0.997^81 = .78 complete), "don't know" (0.998^81 = .85) and "not
    # applicable" on CMIS_2 and ICHG_3 (about 13% each), so listwise keeps about 43% of those invited
    assert 0.3 * 300 < used[300] < 0.6 * 300 and 0.3 * 600 < used[600] < 0.6 * 600
    paths = pd.read_csv(tmp_path / "out" / "power_paths.csv")
    a1 = paths[(paths["name"] == "a1") & (paths["n"] == 600)].iloc[0]
    assert a1["population"] == pytest.approx(-0.40) and a1["metric"] == "std_all"
    assert abs(a1["mean"] - (-0.40)) < 0.12
