"""gapscale beside semopy, factor_analyzer, pingouin and statsmodels, each against lavaan/psych.

    pip install -e ".[compare]"          # semopy, factor_analyzer, pingouin, statsmodels
    python benchmarks/packages.py [--no-r] [--json OUT]

The same models on the same public data, fitted by every Python package that has them, and
each package's numbers printed beside the reference implementation researchers cite (lavaan
0.6 for CFA, psych for EFA, rotations and alpha). The reference numbers come from
``tests/reference/packages.R``, run here by ``Rscript`` when it is on the PATH (into a
temporary file), else read from the committed ``tests/reference/packages.json``.

Comparisons (data in ``tests/reference/``):

- **CFA, ML** (HolzingerSwineford1939, the 3-factor model, n = 301): chi-square, CFI, TLI,
  RMSEA, logLik, AIC, BIC, and the largest difference of the estimates and standard errors
  (loadings, variances, covariances) from lavaan's; semopy and gapscale.
- **CFA, FIML** (the same with cells deleted, ``hs_missing.csv``; lavaan ``missing = "ml"``):
  the same numbers; semopy (``ModelMeans``, whose ML is FIML, and ``Model`` with
  ``obj = "FIML"``) and gapscale.
- **EFA** (psych::bfi's 25 items, complete rows, n = 2436; 5 factors): the largest
  difference of the rotated loadings from ``psych::fa`` (``fm = "pa"`` with oblimin and promax;
  ``fm = "minres"`` with oblimin; ``fm = "ml"`` with varimax) after matching the factors' order
  and signs; factor_analyzer (``method = "principal"``, its closest to psych's ``pa``;
  ``"minres"``; ``"ml"``; when it crashes on scikit-learn's renamed ``check_array`` argument,
  once more with a shim that passes the new name, to see its numbers), statsmodels
  (``Factor(method = "pa")``, ``"ml"``, its rotations), gapscale.
- **Rotations of one loading matrix** (psych's unrotated ``pa`` loadings): varimax with and
  without Kaiser normalisation (R's ``stats::varimax``), promax as ``psych::fa`` does it
  (Kaiser-normalised) and without normalisation; statsmodels' ``rotate_factors``,
  factor_analyzer's ``Rotator``, gapscale's :func:`analysis.rotation.rotate`.
- **Coefficient alpha** (bfi's five scales, negatively keyed items reversed): ``psych::alpha``;
  pingouin's ``cronbach_alpha`` and gapscale.

A package that fails (an exception, a missing method) is reported with the error's first line,
not skipped. CPU seconds (user + sys of this process) per fit are printed for the CFA fits.
Not a test; the tests that hold gapscale to these references are in ``tests/``.

Measured 2026-12-02 (semopy 2.3.11, factor_analyzer 0.5.1, pingouin 0.7.0, statsmodels 0.15.0,
numpy 2.4.6, SciPy 1.17.1, pandas 3.1.1, scikit-learn 1.9.1; lavaan 0.6-14, psych 2.2.9 by
Rscript): CFA ML gapscale = lavaan (chi-square 85.3055, logLik -3737.745; estimates 1e-6, SEs
1.3e-7), semopy chi-square 85.3057, RMSEA .0923 against .0921, "LogLik" 0.283 and AIC 41.4 (its
objective, not a log-likelihood), estimates 1.2e-3; factor_analyzer's CFA fails ("assignment
destination is read-only", pandas 3). FIML: gapscale = lavaan (chi-square 80.072; 6.7e-7, 1.2e-7),
semopy ModelMeans estimates 3e-5 but SEs up to 0.10 off (x9's loading 0.156 vs 0.258),
chi-square 7.67 on 15 df, CFI .569; semopy Model(obj="FIML") chi-square 11.92, CFI -1.52,
estimates off by up to 24.1. EFA (largest loading
difference from psych::fa): gapscale pa 2e-15, minres 1.3e-6, ml 1.9e-6; factor_analyzer fails
on scikit-learn's removed ``force_all_finite``, with the shim its principal 0.21 (not psych's
pa), minres 1.3e-6, ml 3.2e-6; statsmodels pa + oblimin 4.9e-4, + promax 0.19, + varimax 0.093,
ml + varimax 0.11. Rotations: gapscale and factor_analyzer's Rotator 1e-15; statsmodels (no
Kaiser normalisation) 0.093 from R's varimax, 1.9e-3 from the unnormalised varimax, its promax
0.19 (power 2) / 0.36 (power 4) from psych's. Alpha: psych = gapscale = pingouin to 1e-6 as
printed (1e-15 in tests/test_python_packages.py).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REF = ROOT / "tests" / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
HS = [f"x{i}" for i in range(1, 10)]
BFI_SCALES = {c: [f"{c}{k}" for k in range(1, 6)] for c in "ACENO"}
BFI_REVERSED = ["A1", "C4", "C5", "E1", "E2", "O2", "O5"]
FIT_KEYS = ["chisq", "df", "cfi", "tli", "rmsea", "logl", "aic", "bic"]


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def reference(use_r: bool) -> tuple[dict, str]:
    """lavaan's and psych's numbers: from Rscript now, else the committed JSON."""
    if use_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "packages.json"
            run = subprocess.run(["Rscript", str(REF / "packages.R"), str(out)], cwd=ROOT, capture_output=True,
                                 text=True)
            if run.returncode == 0:
                return json.loads(out.read_text()), "Rscript, this run"
            print(f"Rscript failed ({run.stderr.strip().splitlines()[-1:]}); using the committed reference")
    return json.loads((REF / "packages.json").read_text()), "tests/reference/packages.json (committed)"


def first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:160]


def attempt(fn):
    """``fn()``'s value and the warnings it raised, or the error's first line; its own prints
    (optimiser chatter) are kept off the report."""
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            value = fn()
        except Exception as exc:  # a package that fails is reported, not skipped
            return None, first_line(exc), caught
    return value, None, caught


# --------------------------------------------------------------------------- CFA


def lavaan_table(ref: dict) -> pd.DataFrame:
    return pd.DataFrame({k: ref[k] for k in ("lhs", "op", "rhs", "est", "se")})


def gapscale_cfa(data: pd.DataFrame, missing: str) -> dict:
    from analysis.sem.api import fit_model

    t0 = cpu()
    fit = fit_model(HS_MODEL, data, missing=missing)
    seconds = cpu() - t0
    p = fit.parameters
    table = p[p["op"].isin(["=~", "~~"])][["lhs", "op", "rhs", "est", "se"]]
    return {"fit": {k: fit.fit.get(k) for k in FIT_KEYS}, "table": table, "cpu": seconds}


def semopy_cfa(data: pd.DataFrame, missing: str, means: bool = False) -> dict:
    """semopy's ``Model`` (``obj = "MLW"``, or ``"FIML"`` for missing data) or, ``means``,
    ``ModelMeans`` (with a mean structure; its ``obj = "ML"`` is FIML, the documented way)."""
    import semopy

    model = semopy.ModelMeans(HS_MODEL) if means else semopy.Model(HS_MODEL)
    t0 = cpu()
    if means:
        model.fit(data)
    else:
        model.fit(data, obj="FIML" if missing == "fiml" else "MLW")
    seconds = cpu() - t0
    stats = semopy.calc_stats(model).T["Value"]
    est = model.inspect()
    rows = []
    for r in est.itertuples(index=False):
        lval, op, rval, value, se = r[0], r[1], r[2], r[3], r[4]
        if op == "~" and rval in ("visual", "textual", "speed"):  # semopy writes x1 ~ visual for visual =~ x1
            rows.append((rval, "=~", lval, value, se))
        elif op == "~~":
            rows.append((lval, "~~", rval, value, se))
    table = pd.DataFrame(rows, columns=["lhs", "op", "rhs", "est", "se"])
    table["se"] = pd.to_numeric(table["se"], errors="coerce")
    fit = {"chisq": stats["chi2"], "df": stats["DoF"], "cfi": stats["CFI"], "tli": stats["TLI"],
           "rmsea": stats["RMSEA"], "logl": stats["LogLik"], "aic": stats["AIC"], "bic": stats["BIC"]}
    return {"fit": fit, "table": table, "cpu": seconds}


def factor_analyzer_cfa(data: pd.DataFrame) -> dict:
    """factor_analyzer's ``ConfirmatoryFactorAnalyzer`` (ML, factor variances fixed at 1, so its
    loadings are not lavaan's marker-variable ones: only logLik, AIC and BIC are compared), with
    the scikit-learn ``check_array`` shim of :func:`factor_analyzer_efa`."""
    import factor_analyzer.confirmatory_factor_analyzer as module
    from factor_analyzer import ConfirmatoryFactorAnalyzer, ModelSpecificationParser

    original = module.check_array

    def check_array(*args, force_all_finite=True, **kwargs):
        return original(*args, ensure_all_finite=force_all_finite, **kwargs)

    module.check_array = check_array
    try:
        spec = ModelSpecificationParser.parse_model_specification_from_dict(
            data, {"visual": HS[:3], "textual": HS[3:6], "speed": HS[6:]})
        t0 = cpu()
        cfa = ConfirmatoryFactorAnalyzer(spec, disp=False)
        cfa.fit(data.to_numpy())
        seconds = cpu() - t0
    finally:
        module.check_array = original
    fit = {"logl": cfa.log_likelihood_, "aic": cfa.aic_, "bic": cfa.bic_}
    return {"fit": fit, "table": pd.DataFrame(columns=["lhs", "op", "rhs", "est", "se"]), "cpu": seconds}


def table_differences(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[float, float, int]:
    """Largest |difference| of estimates and of SEs (free parameters) over the rows both have,
    matching ``a ~~ b`` either way round; and how many of lavaan's rows were matched."""
    def key(r):
        return (r.lhs, r.op, r.rhs) if r.op != "~~" else ("~~",) + tuple(sorted((r.lhs, r.rhs)))

    a = {key(r): (r.est, r.se) for r in ours.itertuples()}
    d_est, d_se, matched = 0.0, 0.0, 0
    for r in theirs.itertuples():
        k = key(r)
        if k not in a:
            continue
        matched += 1
        est, se = a[k]
        d_est = max(d_est, abs(float(est) - r.est))
        if r.se and r.se > 0 and se == se:
            d_se = max(d_se, abs(float(se) - r.se))
    return d_est, d_se, matched


def print_cfa(title: str, ref: dict, results: dict) -> dict:
    print(f"\n## {title}")
    header = f"{'':<22}" + "".join(f"{k:>12}" for k in FIT_KEYS) + f"{'max|d est|':>12}{'max|d se|':>12}{'CPU-s':>8}"
    print(header)
    lav = lavaan_table(ref)
    print(f"{'lavaan ' + 'R':<22}" + "".join(f"{ref['fit'][k]:>12.4f}" for k in FIT_KEYS) + f"{'':>24}"
          f"{ref.get('cpu', float('nan')):>8.2f}")
    summary = {"lavaan": ref["fit"]}
    for name, (value, error, _) in results.items():
        if error:
            print(f"{name:<22}failed: {error}")
            summary[name] = {"error": error}
            continue
        d_est, d_se, matched = table_differences(value["table"], lav)
        cells = "".join(f"{float(value['fit'][k]):>12.4f}" if value["fit"].get(k) is not None else f"{'-':>12}"
                        for k in FIT_KEYS)
        print(f"{name:<22}{cells}{d_est:>12.2e}{d_se:>12.2e}{value['cpu']:>8.2f}"
              + ("" if matched == len(lav) else f"  ({matched} of {len(lav)} parameters matched)"))
        summary[name] = {**{k: value["fit"].get(k) for k in FIT_KEYS}, "max_diff_est": d_est, "max_diff_se": d_se}
    return summary


# --------------------------------------------------------------------------- EFA and rotations


def matched_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest |difference| of two loading matrices after the best order and signs of our columns."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    m = theirs.shape[1]
    best = np.inf
    for perm in itertools.permutations(range(m)):
        a = ours[:, perm]
        signs = np.sign(np.sum(a * theirs, axis=0))
        signs[signs == 0] = 1
        best = min(best, float(np.max(np.abs(a * signs - theirs))))
    return best


def gapscale_efa(data, extraction, rotation):
    from analysis.efa import efa

    return efa(data.corr(), 5, extraction=extraction, rotation=rotation, n_obs=len(data)).loadings.to_numpy()


def factor_analyzer_efa(data, extraction, rotation, shim=False):
    """factor_analyzer's ``FactorAnalyzer``; ``shim``: its ``check_array`` call given
    scikit-learn's renamed argument (``force_all_finite`` became ``ensure_all_finite`` in
    scikit-learn 1.6 and was removed in 1.8), to see its numbers past the crash."""
    import factor_analyzer.factor_analyzer as module
    from factor_analyzer import FactorAnalyzer

    original = module.check_array
    if shim:
        def check_array(*args, force_all_finite=True, **kwargs):
            return original(*args, ensure_all_finite=force_all_finite, **kwargs)
        module.check_array = check_array
    try:
        fa = FactorAnalyzer(n_factors=5, method=extraction, rotation=rotation)
        fa.fit(data.to_numpy())
        return fa.loadings_
    finally:
        module.check_array = original


def statsmodels_efa(data, extraction, rotation):
    from statsmodels.multivariate.factor import Factor

    res = Factor(data.to_numpy(), n_factor=5, method=extraction).fit()
    res.rotate(rotation)
    return res.loadings


EFA_CASES = [  # (psych fa call, key in packages.json, gapscale, factor_analyzer, statsmodels)
    ('fa(fm = "pa", rotate = "oblimin")', "pa_oblimin", ("pa", "oblimin"), ("principal", "oblimin"), ("pa", "oblimin")),
    ('fa(fm = "pa", rotate = "promax")', "pa_promax", ("pa", "promax"), ("principal", "promax"), ("pa", "promax")),
    ('fa(fm = "pa", rotate = "varimax")', "pa_varimax", ("pa", "varimax"), ("principal", "varimax"), ("pa", "varimax")),
    ('fa(fm = "minres", rotate = "oblimin")', "minres_oblimin", ("minres", "oblimin"), ("minres", "oblimin"), None),
    ('fa(fm = "ml", rotate = "varimax")', "ml_varimax", ("ml", "varimax"), ("ml", "varimax"), ("ml", "varimax")),
]


def gapscale_rotation(a, method, normalize):
    from analysis.rotation import rotate

    return rotate(a, method, normalize=normalize).loadings


def statsmodels_rotation(a, method, normalize, power=4):
    """statsmodels' ``rotate_factors(A, "varimax")`` or ``promax(A, k = power)`` (its default
    power is 2; psych's and R's 4); neither has a Kaiser normalisation option."""
    from statsmodels.multivariate.factor_rotation import promax, rotate_factors

    if normalize:
        raise NotImplementedError("no Kaiser normalisation option")
    return rotate_factors(a, "varimax")[0] if method == "varimax" else promax(a, k=power)[0]


def factor_analyzer_rotation(a, method, normalize):
    from factor_analyzer.rotator import Rotator

    return Rotator(method=method, normalize=normalize).fit_transform(a)


ROTATION_CASES = [  # (label, key, method, Kaiser normalisation)
    ("varimax, Kaiser (stats::varimax default)", "varimax_kaiser", "varimax", True),
    ("varimax, no normalisation", "varimax_raw", "varimax", False),
    ("promax, Kaiser (psych::fa's promax)", "promax_psych", "promax", True),
    ("promax, no normalisation (psych::Promax)", "promax_raw", "promax", False),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-r", action="store_true", help="read lavaan/psych from the committed JSON even if R is here")
    ap.add_argument("--json", type=Path, help="also write the numbers printed as JSON to this file")
    args = ap.parse_args(argv)
    ref, source = reference(not args.no_r)
    versions = {p: version(p) for p in ("gapscale", "semopy", "factor_analyzer", "pingouin", "statsmodels",
                                        "numpy", "scipy", "pandas", "scikit-learn")}
    print("# gapscale and the Python packages against lavaan/psych")
    print("Python " + sys.version.split()[0] + "; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"Reference: {source}: " + ", ".join(f"{k} {v}" for k, v in ref["versions"].items()))
    report = {"versions": versions, "reference_versions": ref["versions"], "reference_source": source}

    hs = pd.read_csv(REF / "holzinger_swineford.csv")
    hsm = pd.read_csv(REF / "hs_missing.csv")[HS]
    report["cfa_ml"] = print_cfa("CFA, ML: HolzingerSwineford1939, 3 factors (n = 301)", ref["cfa_ml"], {
        "gapscale": attempt(lambda: gapscale_cfa(hs, "listwise")),
        "semopy": attempt(lambda: semopy_cfa(hs, "listwise")),
        "factor_analyzer": attempt(lambda: factor_analyzer_cfa(hs))})
    report["cfa_fiml"] = print_cfa("CFA, FIML: hs_missing.csv (lavaan missing = \"ml\")", ref["cfa_fiml"], {
        "gapscale": attempt(lambda: gapscale_cfa(hsm, "fiml")),
        "semopy ModelMeans": attempt(lambda: semopy_cfa(hsm, "fiml", means=True)),
        "semopy Model(FIML)": attempt(lambda: semopy_cfa(hsm, "fiml"))})

    bfi = pd.read_csv(REF / "bfi_25.csv").dropna().reset_index(drop=True)
    print(f"\n## EFA: psych::bfi, 25 items, complete rows (n = {len(bfi)}), 5 factors: max |loading - psych's| "
          "(factors matched in order and sign)")
    report["efa"] = {}
    for call, key, g, f, s in EFA_CASES:
        theirs = np.array(ref["efa"][key]["loadings"])
        row = {}
        for name, spec, fn in (("gapscale", g, gapscale_efa), ("factor_analyzer", f, factor_analyzer_efa),
                               ("statsmodels", s, statsmodels_efa)):
            if spec is None:
                row[name] = "no such method"
                continue
            value, error, _ = attempt(lambda fn=fn, spec=spec: fn(bfi, *spec))
            row[f"{name} ({spec[0]}, {spec[1]})"] = error if error else matched_difference(value, theirs)
            if name == "factor_analyzer" and error and "force_all_finite" in error:
                value, error, _ = attempt(lambda spec=spec: factor_analyzer_efa(bfi, *spec, shim=True))
                row[f"{name} ({spec[0]}, {spec[1]}) with a shim"] = error if error else matched_difference(value, theirs)
        report["efa"][call] = row
        print(f"psych::{call}")
        for name, v in row.items():
            print(f"    {name:<52}" + (f"{v:.2e}" if isinstance(v, float) else f"{v}"))

    a = np.array(ref["rotation"]["unrotated"])
    print("\n## Rotations of psych's unrotated pa loadings: max |loading - R's|")
    report["rotation"] = {}
    for label, key, method, normalize in ROTATION_CASES:
        theirs = np.array(ref["rotation"][key])
        row = {}
        for name, fn in (("gapscale", gapscale_rotation), ("statsmodels", statsmodels_rotation),
                         ("factor_analyzer", factor_analyzer_rotation)):
            value, error, _ = attempt(lambda fn=fn: fn(a, method, normalize))
            row[name] = error if error else matched_difference(value, theirs)
        if key == "promax_psych":  # statsmodels has no normalisation: what its promax gives against psych's
            for power in (4, 2):
                value, error, _ = attempt(lambda power=power: statsmodels_rotation(a, "promax", False, power))
                row[f"statsmodels (its promax, unnormalised, k={power})"] = \
                    error if error else matched_difference(value, theirs)
        if key == "varimax_kaiser":
            value, error, _ = attempt(lambda: statsmodels_rotation(a, "varimax", False))
            row["statsmodels (its varimax, unnormalised)"] = error if error else matched_difference(value, theirs)
        report["rotation"][label] = row
        print(label)
        for name, v in row.items():
            print(f"    {name:<52}" + (f"{v:.2e}" if isinstance(v, float) else f"{v}"))

    keyed = bfi.copy()
    keyed[BFI_REVERSED] = 7 - keyed[BFI_REVERSED]
    print("\n## Coefficient alpha: bfi's five scales, negatively keyed items reversed (psych::alpha)")
    report["alpha"] = {}
    from analysis.reliability import cronbach_alpha

    ours, error, _ = attempt(lambda: cronbach_alpha(keyed, BFI_SCALES).set_index("construct")["raw_alpha"])
    print(f"{'scale':<8}{'psych':>12}{'gapscale':>12}{'pingouin':>12}")
    for scale, items in BFI_SCALES.items():
        ping, perror, _ = attempt(lambda items=items: __import__("pingouin").cronbach_alpha(keyed[items])[0])
        g = error if error else float(ours[scale])
        p = perror if perror else float(ping)
        report["alpha"][scale] = {"psych": ref["alpha"][scale], "gapscale": g, "pingouin": p}
        print(f"{scale:<8}{ref['alpha'][scale]:>12.6f}" + "".join(f"{v:>12.6f}" if isinstance(v, float) else f"  {v}"
                                                                   for v in (g, p)))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
