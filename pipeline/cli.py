"""The ``gapscale`` command line: one group, one subcommand per pipeline stage.

Two kinds of failure, never confused:

* bad input (gapscale's :class:`~analysis.errors.InputError`, a click usage error, a user-given
  path that cannot be read or written) ends with a single ``Error: ...`` line on stderr naming
  the file, key, column or value at fault, and exit status 2;
* anything else is an internal error of gapscale (a bug): exit status 1, one line saying so and
  naming the log file (a new ``gapscale-error-*.log`` in the system's temporary directory, or the
  file named by the ``GAPSCALE_ERROR_LOG`` environment variable) that holds the full traceback.

A user never sees a traceback, and every line printed for an error is bounded in length.

Start-up is kept short (``gapscale --help`` imports only click): each command imports its stage
module inside its own function, and the instrument package is imported only when a command
needs it. Every command runs with BLAS limited to one thread (:func:`limit_blas_threads`)
unless the user sets ``OMP_NUM_THREADS``: on a busy 2-core machine multi-threaded BLAS doubled
the CPU time of an ML CFA (4.05 -> 2.11 CPU-s with one thread).
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

import click

from analysis.errors import InputError

# instrument.DEFAULT_INSTRUMENT without importing the instrument package (yaml and the schema
# cost ~0.15 CPU-s, paid only by the commands that read an instrument)
DEFAULT_INSTRUMENT = Path(importlib.util.find_spec("instrument").submodule_search_locations[0]) / "sustainability_gap.yaml"
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

__all__ = ["cli", "main", "GapscaleError", "one_line"]

EXIT_INPUT = 2
EXIT_INTERNAL = 1
MAX_LINE = 600  # characters of an error line; a longer message is cut (a value quoted in it may be huge)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line, at most ``limit`` characters (cut in the middle of a long value)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head, tail = text[:limit - 100], text[-60:]
    return f"{head} [... {len(text) - len(head) - len(tail)} characters cut ...] {tail}"


class GapscaleError(click.ClickException):
    """A user-facing input error: one line, exit status 2."""

    exit_code = EXIT_INPUT


@contextmanager
def user_errors():
    """Turn input errors raised by the library into one-line CLI errors."""
    from instrument import InstrumentError

    try:
        yield
    except InstrumentError as exc:
        first = exc.problems[0] if exc.problems else ""
        more = len(exc.problems) - 1
        extra = f" (and {more} more; run 'gapscale instrument validate {exc.source}')" if more > 0 else ""
        raise GapscaleError(one_line(f"{exc.source}: invalid instrument: {first}") + extra) from None
    except InputError as exc:
        raise GapscaleError(str(exc)) from None
    except OSError as exc:
        if not given_path(exc.filename):  # not about a path the user gave: main() reports an internal error
            raise
        raise GapscaleError(f"{exc.filename}: {exc.strerror or exc}") from None


def given_path(filename) -> bool:
    """True when ``filename`` is a path given on the command line, or inside a directory given there
    (an --out directory that cannot be written, a full disk): the user's to fix, not a bug."""
    if filename is None:
        return False
    ctx = click.get_current_context(silent=True)
    given = [v for v in (ctx.params.values() if ctx is not None else ()) if isinstance(v, str) and v]
    target = os.path.abspath(os.fsdecode(filename))
    for path in given:
        path = os.path.abspath(path)
        if target == path or target.startswith(path.rstrip(os.sep) + os.sep):
            return True
    return False


@contextmanager
def user_errors_except_instrument():
    """:func:`user_errors` for everything but an InstrumentError (which the caller lists whole)."""
    from instrument import InstrumentError

    try:
        yield
    except InstrumentError:
        raise
    except (InputError, OSError):
        with user_errors():
            raise


INSTRUMENT_PATH = click.Path(exists=True, dir_okay=False)
MAX_PROBLEMS = 200  # problems listed by `instrument validate`


def measurement_options(what: str):
    """The --instrument / --model pair of the analysis stages (exactly one must be given)."""
    def decorate(f):
        f = click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
                         help="lavaan model file instead of an instrument.")(f)
        return click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=None,
                            help=f"Instrument YAML: {what}")(f)
    return decorate


def one_of_instrument_or_model(instrument_path, model_path) -> None:
    if (instrument_path is None) == (model_path is None):
        raise GapscaleError("give exactly one of --instrument or --model")


def quiet_option(f):
    """``--quiet``: the one-line summary only (warnings still go to stderr)."""
    return click.option("--quiet", "-q", is_flag=True,
                        help="Print only the one-line summary, not the report (warnings still go to stderr).")(f)


def finish_stage(stage: str, metrics: dict, out, quiet: bool, warnings=()) -> None:
    """After a stage ran: write its headline figures (``<stage>_metrics.json``), print the
    one-line summary and, unless ``quiet``, the report read back from ``out`` (what
    ``gapscale show OUT`` prints, without its warnings); then the warnings on stderr."""
    from pipeline.console import read_stage_dir, report_for, summary_line
    from pipeline.stage_metrics import write_headline

    with user_errors():
        write_headline(stage, metrics, out)
        click.echo(summary_line(stage, metrics, out))
        if not quiet:
            _, m, tables = read_stage_dir(out, stage)
            click.echo("\n" + report_for(stage, m, tables, out, warnings=False), nl=False)
    for w in warnings:
        click.echo(f"WARNING: {w}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gapscale")
def cli():
    """gapscale: a survey-instrument psychometrics pipeline.

    Describe a scale as a YAML instrument, simulate or ingest responses, and run each stage of
    the analysis. Every stage is a subcommand that works on any instrument and data set; under
    DVC, `dvc repro` runs them in order with the parameters in params.yaml.
    """


@cli.group("instrument")
def instrument_group():
    """Check an instrument file or render it as a questionnaire."""


@instrument_group.command("validate")
@click.argument("file", type=INSTRUMENT_PATH)
def instrument_validate(file):
    """Check an instrument YAML FILE and its lavaan model; list every problem.

    Exit status 0 when the instrument is valid, 2 otherwise (one line per problem, each with
    its YAML path).
    """
    from instrument import InstrumentError
    from pipeline.instrument import validate

    try:
        with user_errors_except_instrument():
            click.echo(validate(file))
    except InstrumentError as exc:
        for problem in exc.problems[:MAX_PROBLEMS]:
            click.echo(one_line(f"{file}: {problem}"), err=True)
        if len(exc.problems) > MAX_PROBLEMS:
            click.echo(f"{file}: ... and {len(exc.problems) - MAX_PROBLEMS} more problems", err=True)
        raise GapscaleError(f"{file}: {len(exc.problems)} problem(s); the instrument is not valid") from None


@instrument_group.command("render")
@click.argument("file", type=INSTRUMENT_PATH)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for questionnaire.md, questionnaire.html, codebook.csv and qualtrics.txt.")
def instrument_render(file, out):
    """Write the questionnaire (Markdown, HTML), codebook and Qualtrics import file of FILE."""
    from pipeline.instrument import render

    with user_errors():
        written = render(file, out)
    click.echo(f"rendered {file} into {out}: " + ", ".join(p.name for p in written))


@cli.command("simulate")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed` and a `simulate:` section (population model, defect rates); "
                   "without it, every construct is exogenous and built-in defaults apply.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for responses.csv, truth.json, truth_respondents.csv and simulate.json.")
@click.option("--n", "n", type=click.IntRange(min=2), default=None,
              help="Number of respondents (overrides simulate.n; default 1000).")
@click.option("--seed", "seed", type=click.IntRange(min=0), default=None,
              help="Random seed (overrides `seed` in the params file; default 0).")
def simulate_cmd(instrument_path, params_path, out, n, seed):
    """Draw a simulated study from a population model, with realistic defects.

    Writes what a survey platform would export (reverse-keyed items as answered, straight-liners,
    random responders, speeders, failed attention checks, missing cells, duplicates and
    out-of-range typos at the rates in params) and the truth about it. Every file says the data
    are simulated. The same seed gives the same bytes.
    """
    from pipeline.simulate import run

    with user_errors():
        metrics = run(instrument_path, params_path, out, n=n, seed=seed)
    click.echo(
        f"simulated {metrics['respondents']} respondents ({metrics['rows']} rows with duplicates) into {out}; "
        "the data are SIMULATED"
    )


@cli.command("clean")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Survey export: CSV/TSV (Qualtrics exports included), SPSS .sav or Excel .xlsx.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for clean.csv, exclusions.csv, cell_problems.csv, missing_*.csv and clean.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with a `clean:` section (screen settings); options below override it.")
@click.option("--encoding", default=None, help="Text encoding of a CSV/TSV file (default UTF-8, with or without BOM).")
@click.option("--sheet", default=None, help="Excel sheet to read (default: the first).")
@click.option("--id-column", "id_column", default=None, help="Column identifying respondents (overrides the instrument).")
@click.option("--truth", "truth_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="truth_respondents.csv of a simulated study: score each screen's precision and recall.")
@click.option("--speeder-fraction", type=float, default=None, help="Flag times under this share of the median (e.g. 0.333).")
@click.option("--longstring-share", type=float, default=None, help="Flag identical runs over this share of the items (e.g. 0.5).")
@click.option("--irv-min", type=float, default=None, help="Flag response SDs below this value (e.g. 0.5).")
@click.option("--mahalanobis-alpha", type=float, default=None, help="Flag D^2 with p below this (e.g. 0.001).")
@click.option("--max-missing-share", type=float, default=None, help="Flag respondents missing more than this share of items.")
@click.option("--no-attention-checks", is_flag=True, help="Switch the attention-check screen off.")
@click.option("--no-duplicates", is_flag=True, help="Switch the duplicate screen off.")
@click.option("--id-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding the key that pseudonymises respondent ids (HMAC-SHA256; keep it outside the data); "
                   "default: the environment variable in clean.id_key_env (GAPSCALE_ID_KEY), else row numbers.")
@click.option("--id-map", type=click.Path(dir_okay=False), default=None,
              help="Write the id -> pseudonym mapping to this file (it holds the original ids: keep it outside "
                   "the outputs and the repository).")
@click.option("--keep-ids", is_flag=True, help="Write respondent ids as they are (only ids that identify no one).")
@quiet_option
def clean_cmd(instrument_path, data_path, out, params_path, encoding, sheet, id_column, truth_path,
              speeder_fraction, longstring_share, irv_min, mahalanobis_alpha, max_missing_share,
              no_attention_checks, no_duplicates, id_key_file, id_map, keep_ids, quiet):
    """Clean a survey export: drop personal data, coerce values, screen respondents.

    Every input row is either kept (clean.csv) or excluded with each reason and the value that
    triggered it (exclusions.csv); unusable cells become missing and are logged
    (cell_problems.csv). Structural problems (missing item columns, an unreadable file) stop
    with exit status 2.
    """
    from pipeline.clean import run

    overrides = {k: v for k, v in dict(
        speeder_fraction=speeder_fraction, longstring_share=longstring_share, irv_min=irv_min,
        mahalanobis_alpha=mahalanobis_alpha, max_missing_share=max_missing_share).items() if v is not None}
    if no_attention_checks:
        overrides["attention_checks"] = False
    if no_duplicates:
        overrides["duplicates"] = False
    overrides.update({k: v for k, v in dict(id_key_file=id_key_file, respondent_ids="keep" if keep_ids else None).items()
                      if v is not None})
    with user_errors():
        m = run(instrument_path, data_path, out, params_path, overrides, encoding, sheet, id_column, truth_path, id_map)
    finish_stage("clean", m, out, quiet, m["warnings"])


@cli.command("split")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The clean data (clean.csv of the clean stage).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for efa.csv, cfa.csv and split.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed` and a `split:` section (share, stratify).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (overrides params; default 0).")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Share of each stratum in the EFA half (default 0.5).")
@click.option("--stratify", default=None, help="Grouping column to stratify by (e.g. relationship_type); '' for none.")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=None,
              help="Instrument YAML: only its columns are written (needed for data not from the clean stage).")
@quiet_option
def split_cmd(data_path, out, params_path, seed, share, stratify, instrument_path, quiet):
    """Split the clean data at random into an EFA half and a CFA half, stratified by group."""
    from pipeline.split import run

    with user_errors():
        m = run(data_path, out, params_path, seed=seed, share=share, stratify=stratify, instrument_path=instrument_path)
    finish_stage("split", m, out, quiet)


@cli.command("efa")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The EFA half (efa.csv of the split stage) or any clean data set.")
@measurement_options("its items, and the construct each should load on (or a lavaan model's `=~` lines).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for efa_*.csv and efa.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed` and an `efa:` section; options below override it.")
@click.option("--n-factors", default=None, help="Number of factors, or 'auto' (parallel analysis).")
@click.option("--extraction", type=click.Choice(["minres", "ml", "pa"]), default=None,
              help="Extraction: minimum residual, maximum likelihood or principal axis (default minres).")
@click.option("--rotation", type=click.Choice(["oblimin", "promax", "geomin", "varimax", "quartimin", "none"]),
              default=None, help="Rotation (default oblimin).")
@click.option("--correlation", type=click.Choice(["pearson", "polychoric"]), default=None,
              help="Correlations to factor (default pearson).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of parallel analysis (default: params).")
@click.option("--parallel-smc/--no-parallel-smc", default=None, help="Parallel analysis with SMC communalities "
              "instead of psych's default one-factor minres ones (efa.parallel_smc; default no).")
@quiet_option
def efa_cmd(data_path, instrument_path, model_path, out, params_path, n_factors, extraction, rotation,
            correlation, seed, parallel_smc, quiet):
    """Exploratory factor analysis: KMO, Bartlett, number of factors, loadings, diagnostics.

    Matches psych::fa for minres/ml/pa extraction and the rotations offered.
    """
    from pipeline.efa import run

    one_of_instrument_or_model(instrument_path, model_path)
    overrides = dict(n_factors=n_factors, extraction=extraction, rotation=rotation, correlation=correlation,
                     parallel_smc=parallel_smc)
    with user_errors():
        m = run(data_path, out, instrument_path, model_path, params_path, overrides, seed)
    finish_stage("efa", m, out, quiet, m["warnings"])


@cli.command("cfa")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The CFA half (cfa.csv of the split stage) or any clean data set.")
@measurement_options("one factor per construct (items in efa.drop_items left out).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for cfa_parameters.csv, cfa_modindices.csv, cfa_residuals.csv and cfa.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with a `cfa:` section (and `efa.drop_items`); options below override it.")
@click.option("--estimator", default=None,
              help="ML (lavaan's default), MLR (robust SEs, Yuan-Bentler scaled test), MLM (complete data: robust "
                   "SEs, Satorra-Bentler scaled test), WLSMV or ULSMV (ordinal items: thresholds, polychoric "
                   "correlations, robust SEs, scaled-and-shifted test; complete data). Default: cfa.estimator or ML.")
@click.option("--missing", default=None,
              help="listwise (lavaan's default) or fiml (full-information ML; with ML or MLR).")
@click.option("--std-lv/--no-std-lv", "std_lv", default=None,
              help="lavaan's std.lv: latent variances fixed at 1 and every loading free, instead of the first "
                   "loading fixed at 1. Default: cfa.std_lv or off.")
@click.option("--ordered", default=None,
              help="Ordinal items: comma-separated columns, or 'all' (every item of the model); for WLSMV/ULSMV, "
                   "which treat all items as ordered when it is not given. Default: cfa.ordered.")
@click.option("--top-modindices", type=click.IntRange(min=0), default=None, help="How many modification indices to keep.")
@quiet_option
def cfa_cmd(data_path, instrument_path, model_path, out, params_path, estimator, missing, std_lv, ordered,
            top_modindices, quiet):
    """Confirmatory factor analysis by ML, MLR or MLM (FIML with ML and MLR), or by WLSMV or ULSMV
    for ordinal items, with lavaan's defaults and fit measures.

    Writes the parameter table (lhs, op, rhs, label, est, se, z, pvalue, ci_lower, ci_upper,
    std_all, std_all_se), the largest modification indices, standardized residuals, and cfa.json
    with lavaan's fitMeasures; inadmissible solutions are flagged and printed.
    """
    from pipeline.cfa import run

    one_of_instrument_or_model(instrument_path, model_path)
    overrides = dict(estimator=estimator, missing=missing, std_lv=std_lv, ordered=ordered,
                     top_modindices=top_modindices)
    with user_errors():
        m = run(data_path, out, instrument_path, model_path, params_path, overrides)
    finish_stage("cfa", m, out, quiet, m["inadmissible"])


@cli.command("reliability")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The CFA half (cfa.csv of the split stage) or any clean data set.")
@measurement_options("one factor per construct (items in efa.drop_items left out).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for reliability.csv, item_statistics.csv, fornell_larcker.csv, htmt.csv, reliability.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML: `reliability:` (htmt_bootstrap, ci, method_factor, method_variants, cmv_missing), "
                   "`cfa.missing`, `efa.drop_items`, `seed`.")
@click.option("--htmt-bootstrap", type=click.IntRange(min=0), default=None, help="Bootstrap draws for HTMT intervals (0: none).")
@click.option("--no-method-factor", is_flag=True, help="Skip the common-method-variance models (method factor, marker technique); Harman's test stays.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the bootstrap (default: params).")
@click.option("--cfa", "cfa_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The cfa stage's output directory (cfa.json, cfa_parameters.csv): its CFA instead of a refit.")
@quiet_option
def reliability_cmd(data_path, instrument_path, model_path, out, params_path, htmt_bootstrap, no_method_factor, seed,
                    cfa_dir, quiet):
    """Reliability (alpha, omega, CR), convergent and discriminant validity (AVE, Fornell-Larcker,
    HTMT with bootstrap intervals) and common-method variance (Harman, unmeasured method factor; with a
    marker construct in the instrument the CFA marker technique, Lindell-Whitney and method-adjusted paths)."""
    from pipeline.reliability import run

    one_of_instrument_or_model(instrument_path, model_path)
    overrides = dict(htmt_bootstrap=htmt_bootstrap, method_factor=False if no_method_factor else None)
    with user_errors():
        m = run(data_path, out, instrument_path, model_path, params_path, overrides, seed, cfa_dir)
    finish_stage("reliability", m, out, quiet, m["flags"] + m["warnings"])


@cli.command("invariance")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The CFA half (cfa.csv of the split stage) or any clean data set with a grouping column.")
@measurement_options("one factor per construct (items in efa.drop_items left out).")
@click.option("--group", "group", default=None,
              help="Grouping column (default: invariance.group in the params file, e.g. relationship_type).")
@click.option("--structural-model", "structural_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="lavaan model whose regression paths are compared across the groups once metric invariance "
                   "holds (labels apply within a group; := lines are skipped).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for invariance_fit.csv, invariance_groups.csv, invariance_latent_means.csv, "
                   "invariance_paths.csv, invariance_parameters.csv and invariance.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with an `invariance:` section (and `efa.drop_items`); options below override it.")
@click.option("--missing", default=None, help="fiml (full-information ML, the default) or listwise.")
@click.option("--min-group-size", type=click.IntRange(min=2), default=None,
              help="Smallest group fitted (default 100); smaller groups are reported and left out.")
@click.option("--partial", "partial", multiple=True,
              help="A parameter left free across groups (partial invariance), e.g. 'GAP1_2 ~ 1' or 'GAP1 =~ GAP1_4'; "
                   "repeat for more.")
@click.option("--reference-group", default=None, help="Group whose latent means are fixed at 0 (default: the largest).")
@click.option("--criterion", type=click.Choice(["fit_indices", "cfi", "chisq"]), default=None,
              help="When a step holds: fit_indices (ΔCFI > -.010 and ΔRMSEA < .015, the default), cfi, or chisq.")
@click.option("--estimator", default=None,
              help="ML (default), MLR or MLM (robust; Satorra-Bentler 2001 scaled differences, robust CFI/RMSEA), "
                   "WLSMV or ULSMV (ordered items: thresholds, loadings, intercepts as semTools' measEq.syntax).")
@click.option("--ordered", default=None,
              help="Ordered items for WLSMV/ULSMV: 'all' or a comma-separated list of columns.")
@click.option("--std-lv/--no-std-lv", "std_lv", default=None,
              help="Identify the factors by unit variance instead of the first loading (lavaan's std.lv).")
@click.option("--hypotheses", "hypotheses_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML of hypotheses; those with `groups:` (a path larger in some groups than in others) are "
                   "tested as one-sided contrasts in the model with free paths (needs --structural-model).")
@quiet_option
def invariance_cmd(data_path, instrument_path, model_path, group, structural_path, out, params_path, missing,
                   min_group_size, partial, reference_group, criterion, estimator, ordered, std_lv, hypotheses_path,
                   quiet):
    """Measurement invariance across groups: configural, metric, scalar and strict models with
    equality constraints across groups (as lavaan's group.equal), their chi-square differences
    and changes in CFI and RMSEA, the level reached, latent mean differences when scalar
    invariance holds, and the structural paths compared across the groups (free vs equal,
    Wald test per path). Groups too small to fit are reported and left out.
    """
    from pipeline.invariance import run

    one_of_instrument_or_model(instrument_path, model_path)
    overrides = dict(group=group, missing=missing, min_group_size=min_group_size, partial=list(partial) or None,
                     reference_group=reference_group, criterion=criterion, estimator=estimator, ordered=ordered,
                     std_lv=std_lv)
    with user_errors():
        m = run(data_path, out, instrument_path, model_path, structural_path, params_path, overrides,
                hypotheses_path)
    finish_stage("invariance", m, out, quiet, m["warnings"])


@cli.command("sem")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The CFA half (cfa.csv of the split stage) or any clean data set.")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="lavaan model: measurement and structural parts, labels and := defined effects.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for sem_parameters.csv, sem_r2.csv, sem_hypotheses.csv, sem_competing.csv and sem.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with a `sem:` section (and `seed`); options below override it.")
@click.option("--hypotheses", "hypotheses_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML of hypotheses: id -> {statement, expect: {parameter: positive|negative}}.")
@click.option("--invariance", "invariance_json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="invariance.json of the invariance stage, for a hypothesis with `source: invariance` or `groups:`.")
@click.option("--htmt", "htmt_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="htmt.csv of the reliability stage, for a hypothesis with `distinct: {htmt_below: ...}` (its "
                   "bootstrap interval).")
@click.option("--estimator", default=None,
              help="ML (lavaan's default), MLR (robust SEs, Yuan-Bentler scaled test), MLM (Satorra-Bentler, complete "
                   "data), WLSMV or ULSMV (ordinal items: --ordered, --missing listwise, --bootstrap 0).")
@click.option("--std-lv/--no-std-lv", "std_lv", default=None,
              help="lavaan's std.lv: latent variances fixed at 1 instead of the first loading (default: no).")
@click.option("--ordered", default=None,
              help="Ordinal columns for WLSMV/ULSMV: COL1,COL2,... or 'all' (every observed endogenous variable).")
@click.option("--missing", default=None, help="fiml (full-information ML) or listwise.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=None,
              help="Bootstrap draws (default 2000; 0 for Wald intervals only).")
@click.option("--seed", type=int, default=None, help="Seed of the bootstrap (default: seed in the params file, else 0).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for the bootstrap (default: all cores); the draws do not depend on it.")
@click.option("--scheduler", default=None,
              help="Address of a Dask scheduler (tcp://host:8786) to run the bootstrap draws on instead of local "
                   "processes (params compute.scheduler); the draws are the same.")
@quiet_option
def sem_cmd(data_path, model_path, out, params_path, hypotheses_path, invariance_json, htmt_path, estimator, std_lv,
            ordered, missing, bootstrap, seed, jobs, scheduler, quiet):
    """Structural model: paths, R², defined (indirect and total) effects with delta-method and
    bootstrap (percentile and bias-corrected) intervals, competing models (chi-square
    difference, AIC, BIC, the preferred model) and the hypotheses table.
    """
    from pipeline.sem import run

    overrides = dict(estimator=estimator, std_lv=std_lv, ordered=ordered, missing=missing, bootstrap=bootstrap)
    with user_errors():
        m = run(data_path, model_path, out, params_path, hypotheses_path, invariance_json, overrides, seed, jobs,
                scheduler, htmt_path)
    finish_stage("sem", m, out, quiet, m["warnings"])


@cli.command("power")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=None,
              help="Instrument YAML: its population is params simulate: (defects, missing cells, screens).")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed`, `power:` (n, replications, alpha, target, estimator, missing, clean), "
                   "`simulate:` and `clean:`.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for power.json, power_by_n.csv, power_paths.csv, power_replications.csv, power_curve.*.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="lavaan analysis model (default: the instrument's measurement model).")
@click.option("--hypotheses", "hypotheses_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML of hypotheses: id -> {statement, expect: {parameter: positive|negative}}.")
@click.option("--population", "population_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="lavaan model with population values (y ~ 0.3*x; as lavaan::simulateData) instead of simulate:.")
@click.option("--replications", type=click.IntRange(min=0), default=None,
              help="Monte Carlo replications per N (power.replications; 0: the analytic power alone).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores); the results do not depend on it.")
@click.option("--scheduler", default=None,
              help="Address of a Dask scheduler (tcp://host:8786) to run the replications on (params "
                   "compute.scheduler); the results are the same.")
def power_cmd(instrument_path, params_path, out, model_path, hypotheses_path, population_path, replications, jobs,
              scheduler):
    """Power and sample size: the N per hypothesis (analytic, checked by Monte Carlo), convergence,
    bias and coverage per N."""
    from pipeline.power import run

    with user_errors():
        m = run(instrument_path, params_path, out, model_path, hypotheses_path, population_path, scheduler, jobs,
                dict(replications=replications))
    if m.get("analytic"):
        need = "; ".join(f"{h}: N {v['n_required']:.0f}" if v["n_required"] == v["n_required"]
                         else f"{h}: not reached" for h, v in m["analytic"]["required_n"].items())
        check = m.get("check")
        click.echo(f"power (analytic, {m['estimator']}, {m['missing']}): {need or 'no hypotheses'}"
                   + (f"; Monte Carlo check ({m['replications']} replication{'' if m['replications'] == 1 else 's'} "
                      f"per N): largest |z| {check['max_abs_z']:.2f}"
                      + (f", SE ratio {check['median_se_ratio']:.3f}" if check.get("median_se_ratio") else "")
                      if check and check.get("max_abs_z") is not None else "") + f"; outputs in {out}")
        return
    need = "; ".join(f"{h}: N {v['n_grid']:g} (interpolated {v['n_interpolated']:.0f})" if v["n_grid"] == v["n_grid"]
                     else f"{h}: {v['note']}" for h, v in m["required_n"].items())
    click.echo(f"power ({m['replications']} replications per N, {m['estimator']}, {m['missing']}): "
               f"{need or 'no hypotheses'}; outputs in {out}")


STAGE_DIR = click.Path(file_okay=False)


@cli.command("show")
@click.argument("directory", type=click.Path())
@click.option("--pager/--no-pager", default=True, show_default=True,
              help="Page a long report in a terminal (never when the output is a pipe or a file).")
def show_cmd(directory, pager):
    """Print the report of a stage's output DIRECTORY (data/interim/clean, data/processed/cfa, ...)
    as the stage printed it, without running anything: the stage is recognised by its files."""
    from pipeline.console import show

    with user_errors():
        text = show(directory)
    if pager and sys.stdout.isatty():
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)


@cli.command("report")
@click.option("--content", "content_dir", type=STAGE_DIR, default=None,
              help="Output directory of the content stage (content.json, content_*.csv): the expert panel.")
@click.option("--clean", "clean_dir", type=STAGE_DIR, default=None,
              help="Output directory of the clean stage (clean.json, exclusions.csv, missing_*.csv).")
@click.option("--split", "split_dir", type=STAGE_DIR, default=None, help="Output directory of the split stage (split.json).")
@click.option("--efa", "efa_dir", type=STAGE_DIR, default=None, help="Output directory of the efa stage (efa.json, efa_*.csv).")
@click.option("--cfa", "cfa_dir", type=STAGE_DIR, default=None,
              help="Output directory of the cfa stage (cfa.json, cfa_parameters.csv).")
@click.option("--reliability", "reliability_dir", type=STAGE_DIR, default=None,
              help="Output directory of the reliability stage (reliability.json, reliability.csv, fornell_larcker.csv, htmt.csv).")
@click.option("--invariance", "invariance_dir", type=STAGE_DIR, default=None,
              help="Output directory of the invariance stage (invariance.json, invariance_*.csv).")
@click.option("--sem", "sem_dir", type=STAGE_DIR, default=None,
              help="Output directory of the sem stage (sem.json, sem_*.csv).")
@click.option("--power", "power_dir", type=STAGE_DIR, default=None,
              help="Output directory of the power stage (power.json, power_hypotheses.csv).")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=None,
              help="Instrument YAML: its name for the title and its construct labels for the tables (optional).")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with a `report:` section (fit, reliability, AVE and HTMT cut-offs).")
@click.option("--title", default=None, help="Title of the report (default: from the instrument's name).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for report.md, report.html, report.json, tables/, figures/ and plots/.")
def report_cmd(content_dir, clean_dir, split_dir, efa_dir, cfa_dir, reliability_dir, invariance_dir, sem_dir,
               power_dir, instrument_path, params_path, title, out):
    """Write the report: Markdown and a self-contained HTML page, APA tables as CSV, figures as SVG.

    Sections in the order of a scale-validation paper (content validity, sample and screening, EFA, CFA,
    reliability and validity, invariance, structural model) after a plain-language summary of
    what held, what did not and every warning the stages raised. A stage whose outputs are
    absent is reported as not run. Simulated data are named as such on the first line.
    """
    from pipeline.report import run

    dirs = dict(content=content_dir, clean=clean_dir, split=split_dir, efa=efa_dir, cfa=cfa_dir, reliability=reliability_dir,
                invariance=invariance_dir, sem=sem_dir, power=power_dir)
    if all(d is None for d in dirs.values()):
        raise GapscaleError("give at least one stage output directory (--clean, --efa, --cfa, ...)")
    with user_errors():
        m = run(dirs, out, params_path, instrument_path, title)
    not_run = f"; not run: {', '.join(m['sections_not_run'])}" if m["sections_not_run"] else ""
    click.echo(f"report{' (SIMULATED data)' if m['simulated'] else ''}: {m['tables']} tables, {m['figures']} figures; "
               f"{m['held']} checks held, {m['not_held']} did not; {m['warnings']} warnings{not_run}; "
               f"{out}/report.html")


@cli.command("content")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--ratings", "ratings_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The panel's ratings, a long CSV: expert,item,relevance[,assigned][,comment]; one row per expert "
                   "and item; relevance 1-4 (1 not, 2 somewhat, 3 quite, 4 highly relevant); assigned = the "
                   "construct id the expert sorted the item into (item-sort task; blank if not sorted).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for content_items.csv, content_scale.csv, content_flags.csv, content_table_apa.csv, "
                   "content.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with a `content:` section (essential, alpha, sort_choices); options override it.")
@click.option("--essential", "essential_min", type=click.Choice(["3", "4"]), default=None,
              help="Lowest relevance counted as 'essential' for Lawshe's CVR (default 3: quite or highly relevant).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="One-tailed level of the exact binomial tests (CVR critical value, item sort; default .05).")
@click.option("--sort-choices", type=click.IntRange(min=2), default=None,
              help="Number of constructs the experts sorted into (chance = 1/k); default: all of the instrument's.")
@click.option("--truth", "truth_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="truth.json of 'gapscale content-panel': score the flags (precision, recall).")
@click.option("--form-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="form_key.csv of 'gapscale content-form': the item column holds its neutral codes.")
def content_cmd(instrument_path, ratings_path, out, params_path, essential_min, alpha, sort_choices, truth_path,
                form_key):
    """Content validity from an expert panel: I-CVI, S-CVI/Ave, S-CVI/UA, modified kappa (Polit, Beck
    & Owen 2007), Lawshe's CVR with Ayre & Scally's exact critical values, and the item-sort
    indices p_sa and c_sv (Anderson & Gerbing 1991; Howard & Melloy 2016), with a flag and its
    reasons per item and an APA table. The formulas and the input format: analysis/content.py.
    """
    from pipeline.content import run

    with user_errors():
        m = run(instrument_path, ratings_path, out, params_path=params_path,
                essential_min=None if essential_min is None else int(essential_min), alpha=alpha,
                sort_choices=sort_choices, truth_path=truth_path, form_key=form_key)
    click.echo(f"content: {m['n_items_rated']} items rated by {m['n_experts']} experts; S-CVI/Ave = "
               f"{m['s_cvi_ave']:.3f}, S-CVI/UA = {m['s_cvi_ua']:.3f}; {m['n_flagged']} items flagged"
               + (f": {', '.join(m['flagged_items'])}" if m["flagged_items"] else "") + f"; {out}/content.json")
    for note in m["notes"]:
        click.echo(f"NOTE: {note}", err=True)
    if "recovery" in m:
        r = m["recovery"]
        click.echo(f"planted items (SIMULATED panel): precision {r['precision']:.3f}, recall {r['recall']:.3f}; "
                   f"false positives: {', '.join(r['false_positives']) or 'none'}; missed: {', '.join(r['missed']) or 'none'}")


@cli.command("content-panel")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory for ratings.csv and truth.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Params YAML with `seed` and a `content:` section (experts, ambiguous); options override it.")
@click.option("--experts", type=click.IntRange(min=2), default=None, help="Panel size (default 12).")
@click.option("--ambiguous", type=click.IntRange(min=0), default=None, help="Items made ambiguous on purpose (default 6).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (default: params' seed, else 0).")
def content_panel_cmd(instrument_path, out, params_path, experts, ambiguous, seed):
    """Simulate an expert panel's ratings (relevance and item sort) with a few items made ambiguous
    on purpose (lower relevance, often sorted into a neighbouring construct); the truth goes to truth.json."""
    from pipeline.content import simulate

    with user_errors():
        t = simulate(instrument_path, out, params_path=params_path, n_experts=experts, n_ambiguous=ambiguous, seed=seed)
    click.echo(f"simulated a panel of {t['n_experts']} experts into {out} (SIMULATED); planted: "
               f"{', '.join(t['ambiguous']) or 'none'}")


@cli.command("content-form")
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=str(DEFAULT_INSTRUMENT),
              show_default="the default Sustainability Gap instrument", help="Instrument YAML file.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for content_form.md, content_form.html, ratings_template.csv and form_key.csv.")
@click.option("--item-sort/--no-item-sort", default=True, show_default=True,
              help="Include the blind item-sort task (neutral item codes in a random order; form_key.csv maps them).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the items' order in the sort.")
def content_form_cmd(instrument_path, out, item_sort, seed):
    """Write the rating form for the expert panel (Markdown, HTML) and the CSV template they fill in
    (the input of 'gapscale content --ratings')."""
    from pipeline.content import render_form

    with user_errors():
        written = render_form(instrument_path, out, item_sort=item_sort, seed=seed)
    click.echo(f"wrote {', '.join(p.name for p in written)} into {out}"
               + ("; keep form_key.csv for yourself (pass it to 'gapscale content --form-key')" if item_sort else ""))


@cli.command("init")
@click.argument("directory", metavar="DIR", required=False, type=click.Path(file_okay=False))
@click.option("--instrument", "instrument_path", type=INSTRUMENT_PATH, default=None,
              help="Your instrument YAML (copied into DIR/instrument/ with the model its model: key names).")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Your survey export (CSV/TSV, Qualtrics CSV, SPSS .sav, Excel .xlsx); copied into DIR/data/raw/.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="lavaan model for the sem stage (default: the instrument's model:; without one, no sem stage).")
@click.option("--group", default=None,
              help="Context question to stratify the split and test invariance across (default: the one whose "
                   "groups big enough for the invariance models hold the most respondents).")
@click.option("--code-stamp", "code_stamp", type=click.Path(dir_okay=False), default=None,
              help="Only write gapscale's version and code hash to this file (the study's first stage runs it).")
def init_cmd(directory, instrument_path, data_path, model_path, group, code_stamp):
    """Write a ready study into DIR for your instrument, export and model; then `cd DIR && dvc repro`.

    Everything is checked first (the instrument and model, the export's columns and values, the model's
    variables, the grouping column); every problem is listed with its file and key or column, and
    nothing is written (exit status 2).
    """
    from pipeline.init import InitProblems, run, write_code_stamp

    if code_stamp is not None:
        if any(v is not None for v in (directory, instrument_path, data_path, model_path, group)):
            raise GapscaleError("--code-stamp FILE is given alone")
        with user_errors():
            stamp = write_code_stamp(code_stamp)
        click.echo(f"gapscale {stamp['gapscale']}: code {stamp['code_sha256'][:12]} ({stamp['files']} files) "
                   f"in {code_stamp}")
        return
    for value, what in ((directory, "DIR"), (instrument_path, "--instrument"), (data_path, "--data")):
        if value is None:
            raise GapscaleError(f"missing {what}: gapscale init DIR --instrument my.yaml --data export.csv "
                                "[--model m.lavaan]")
    problems = []
    with user_errors():
        try:
            m = run(directory, instrument_path, data_path, model_path, group)
        except InitProblems as exc:
            problems = exc.problems
    if problems:
        for problem in problems[:MAX_PROBLEMS]:
            click.echo(one_line(f"Error: {problem}"), err=True)
        raise GapscaleError(f"{len(problems)} problem(s); no study written")
    for note in m["notes"]:
        click.echo(f"note: {note}")
    click.echo(f"study written to {directory}: stages {', '.join(m['stages'])}; next: cd {directory} && dvc repro")


USER_OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")  # as the user started gapscale


def limit_blas_threads(environ=os.environ, user_threads=USER_OMP_NUM_THREADS):
    """One BLAS/OpenMP thread for every command, unless the user set ``OMP_NUM_THREADS``
    (``user_threads``: its value when gapscale started).

    The variables are set before numpy is first imported (the stage modules are imported lazily,
    inside the commands), so OpenBLAS/MKL start with one thread; worker processes inherit them.
    When numpy is already loaded (gapscale called from Python), :func:`threadpoolctl.threadpool_limits`
    limits the loaded libraries for the duration of the command. Returns the context manager
    to run the command in.
    """
    from contextlib import nullcontext

    if user_threads is not None:
        return nullcontext()
    for name in BLAS_THREAD_VARIABLES:
        environ.setdefault(name, "1")
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1)
    return nullcontext()


def main(argv=None) -> None:
    """Console entry point: run the CLI; bad input is one line and exit status 2, anything else an
    internal error (one line naming the log file with the traceback) and exit status 1.

    With ``GAPSCALE_CPU_LOG`` set to a file, each command appends one line to it on exit: the
    command and its CPU seconds (user + sys, its worker processes included), so that
    ``benchmarks/repro.py`` can give every stage's share of one real ``dvc repro``.
    """
    try:
        _main(argv)
    finally:
        if os.environ.get("GAPSCALE_CPU_LOG"):
            record_cpu(os.environ["GAPSCALE_CPU_LOG"], argv)


def record_cpu(path: str, argv) -> None:
    """Append ``command<TAB>CPU seconds`` (user + sys, children included) to ``path``."""
    args = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in args if not a.startswith("-")][:2]
    command = " ".join(words[:2]) if words[:1] == ["instrument"] else (words[0] if words else "")
    t = os.times()
    cpu = t.user + t.system + t.children_user + t.children_system
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{command}\t{cpu:.3f}\n")
    except OSError:
        pass  # a benchmark aid: never let it fail the command


def _main(argv=None) -> None:
    try:
        with limit_blas_threads():
            code = cli.main(args=argv, prog_name="gapscale", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "gapscale"
        click.echo(f"Error: {one_line(exc.format_message())} (see '{cmd} --help')", err=True)
        sys.exit(EXIT_INPUT)
    except click.ClickException as exc:
        click.echo(f"Error: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - every other exception is a bug of gapscale, reported as one
        log = write_error_log(exc, argv)
        where = f"the traceback is in {log}" if log else "the traceback could not be written to a log file"
        click.echo(f"Error: internal error of gapscale (a bug, not a problem with your input): "
                   f"{one_line(f'{type(exc).__name__}: {withhold_values(str(exc))}', 300)}; {where}; please report it",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_PERSONAL = re.compile(r"[^@\s]+@[^@\s]+|\b\d{1,3}(\.\d{1,3}){3}\b|\+?\d[\d ()./-]{6,}\d")


def withhold_values(message: str) -> str:
    """An internal error's message with the data values it may quote withheld: quoted literals
    (Python quotes values with repr) and anything that looks like an e-mail, IP address or phone
    number become ``<value>``, so no respondent's answer reaches the terminal or the log file."""
    return _PERSONAL.sub("<value>", _QUOTED.sub("<value>", message))


def write_error_log(exc: BaseException, argv) -> str | None:
    """Write the traceback of an internal error to a new log file; return its path (None on failure).

    The file is ``$GAPSCALE_ERROR_LOG`` when that is set, otherwise a new
    ``gapscale-error-*.log`` in the system's temporary directory.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    chain = exc.__cause__ or exc.__context__
    text = (f"gapscale internal error\ncommand: gapscale {' '.join(map(str, args))}\n"
            f"cwd: {os.getcwd()}\n\nTraceback (most recent call last):\n{frames}"
            f"{type(exc).__name__}: {withhold_values(str(exc))}\n"
            + (f"(raised while handling {type(chain).__name__}: {withhold_values(str(chain))})\n" if chain else ""))
    try:
        target = os.environ.get("GAPSCALE_ERROR_LOG")
        if target:
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)
            return target
        fd, path = tempfile.mkstemp(prefix="gapscale-error-", suffix=".log", text=True)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path
    except OSError:
        return None


if __name__ == "__main__":
    main()
