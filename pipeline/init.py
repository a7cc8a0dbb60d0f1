"""``gapscale init``: a ready study directory for your own instrument, export and model.

``gapscale init DIR --instrument my.yaml --data export.csv [--model m.lavaan] [--group COLUMN]``
checks everything a ``dvc repro`` would trip over *before* writing anything, then writes DIR:

* ``instrument/``: the instrument (with the model file its ``model:`` key names), the model given
  by ``--model`` and an empty hypotheses file (``{}``; the model's regression paths and defined
  parameters are listed in its comments, ready to be given a sign);
* ``data/raw/<export>``: a copy of the export, tracked by DVC (``dvc add``);
* ``dvc.yaml``: :data:`DVC_TEMPLATE`, the template the default study's dvc.yaml is rendered from,
  without the ``simulate`` stage and the simulation's truth; every path is in ``vars``. Without a
  grouping column that fits, the ``invariance`` stage is left out; without a model (``--model`` or
  the instrument's ``model:``), the ``sem`` stage;
* ``params.yaml``: :data:`PARAMS_TEMPLATE` (every stage's settings, as the default study's) with
  ``split.stratify`` and ``invariance.group`` set to a column the data have, and no competing models;
* ``README.md`` saying what was chosen and why; a DVC repository (``dvc init``, without git when
  DIR is not inside a git work tree).

The checks, each problem named with its file and key or column (exit status 2, one line each):
the instrument (and its model) is valid; every item is a column of the export; the export reads
and its id column, values and context answers are usable (the clean stage's own checks); every
observed variable of the model is an item or a coded context column of the instrument; the model is
identified; the grouping column (``--group``, or the best context question) has at least two
groups big enough for the invariance models in the CFA half.

How a study finds gapscale's code: the stages run the installed ``gapscale`` command. Their code
dependency is a stamp file, written by the study's first stage (``gapscale init --code-stamp FILE``,
run on every ``dvc repro``): gapscale's version and a SHA-256 of every file of its three packages as
installed (:func:`code_stamp`). Editing or upgrading gapscale changes the stamp, so every stage
reruns; a repro with the same code leaves the stamp's bytes, and so the stages, as they are. Depending
on the installed package directories instead would hash files outside the study (DVC's external
dependencies), with the ``__pycache__`` files Python rewrites there, and rerun every stage each time.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import InputError

__all__ = ["InitProblems", "Study", "check", "code_stamp", "default_context", "render_dvc", "render_params", "run",
           "write_code_stamp", "DVC_TEMPLATE", "PARAMS_TEMPLATE"]

TEMPLATES = Path(__file__).resolve().parent / "templates" / "study"
DVC_TEMPLATE = TEMPLATES / "dvc.yaml.jinja"
PARAMS_TEMPLATE = TEMPLATES / "params.yaml.jinja"
CODE_PACKAGES = ("analysis", "instrument", "pipeline")
CODE_STAMP = "gapscale_code.json"
# the study's defaults (params.yaml written by init, as the default study's params.yaml)
SPLIT_SHARE = 0.5
MIN_GROUP_SIZE = 100
MAX_LISTED = 12  # groups or columns quoted in one message
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class InitProblems(InputError):
    """Everything wrong with the inputs of ``gapscale init``; ``problems`` lists each one (file and
    key or column first)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s); no study written: " + "; ".join(self.problems[:3]))


# --------------------------------------------------------------------------- templates


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)


def _code_deps(deps) -> str:
    return "\n".join(f"      - {d}" for d in deps)


def default_context() -> dict:
    """The template's values for the default simulated study (the repository's dvc.yaml)."""
    return dict(simulated=True, version=_version(), notes=[], instrument="instrument/sustainability_gap.yaml",
                model="instrument/sustainability_gap.lavaan",
                hypotheses="instrument/sustainability_gap.hypotheses.yaml", raw="data/raw",
                responses="data/raw/responses.csv", truth="data/raw/truth_respondents.csv",
                questionnaire="data/processed/questionnaire", interim="data/interim", processed="data/processed",
                code_stamp=None, code_deps=_code_deps(CODE_PACKAGES), invariance=True, structural=True)


def render_dvc(context: dict) -> str:
    """dvc.yaml from :data:`DVC_TEMPLATE` (``python -m pipeline.init`` prints the default study's)."""
    return _environment().get_template(DVC_TEMPLATE.name).render(**context)


def render_params(stratify: str | None, group: str | None, seed: int = 20261122) -> str:
    """params.yaml of a new study from :data:`PARAMS_TEMPLATE`."""
    return _environment().get_template(PARAMS_TEMPLATE.name).render(
        seed=seed, stratify=_yaml_scalar(stratify), group=_yaml_scalar(group), share=SPLIT_SHARE,
        min_group_size=MIN_GROUP_SIZE)


def _yaml_scalar(value) -> str:
    """A column name as a YAML scalar: plain when YAML reads it back as the same text, else quoted."""
    if value is None:
        return "null"
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and text.lower() not in (
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf")
    return text if plain else json.dumps(text)


# --------------------------------------------------------------------------- the code stamp


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gapscale")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        return "unknown"


def code_stamp() -> dict:
    """gapscale's version and a SHA-256 over every file (path relative to its package, and bytes) of
    the analysis, instrument and pipeline packages as imported, ``__pycache__`` and ``.pyc`` left out.
    Nothing machine-specific (no absolute path, no time) enters it, so the same code gives the same
    stamp anywhere."""
    digest = hashlib.sha256()
    files = 0
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for location in locations:
            root = Path(location)
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root)
                if not path.is_file() or "__pycache__" in rel.parts or path.suffix == ".pyc":
                    continue
                digest.update(f"{package}/{rel.as_posix()}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
                files += 1
    return {"gapscale": _version(), "code_sha256": digest.hexdigest(), "files": files}


def write_code_stamp(path: str | Path) -> dict:
    stamp = code_stamp()
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return stamp


# --------------------------------------------------------------------------- the checks


@dataclass
class Study:
    """What :func:`check` found: the inputs, loaded, and the choices made for the study."""

    instrument_path: Path
    data_path: Path
    model_path: Path | None = None      # the structural model (--model, else the instrument's model:)
    instrument: object = None
    model: object = None
    group: str | None = None
    group_sizes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _candidates(inst, data, n_items: int) -> dict[str, dict]:
    """Context questions usable as a grouping column: not personal, not free text, answered in the
    data; each with its level counts."""
    out = {}
    for q in inst.context:
        if q.personal or q.type not in ("categorical", "integer") or q.id not in data.columns:
            continue
        answers = data[q.id].dropna()
        if q.type == "integer":  # 18, not 18.0
            answers = answers.astype(float).astype("int64")
        counts = answers.astype(str).value_counts()
        out[q.id] = {str(k): int(v) for k, v in counts.items()}
    return out


def _group_fit(counts: dict, n_items: int) -> tuple[list[str], int]:
    """The groups big enough for the invariance models in the CFA half (``split.share`` of each
    group goes to the EFA half): at least ``invariance.min_group_size`` rows and more rows than items."""
    need = max(MIN_GROUP_SIZE, n_items + 1)
    big = [g for g, n in counts.items() if math.floor(n * (1 - SPLIT_SHARE)) >= need]
    return big, need


def _show_counts(counts: dict) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{g} {n}" for g, n in items[:MAX_LISTED])
    return shown + (f", ... ({len(items)} groups)" if len(items) > MAX_LISTED else "") if items else "no answers"


def check(instrument_path, data_path, model_path=None, group=None) -> Study:
    """Check the inputs of a study; raise :class:`InitProblems` listing every problem found."""
    from analysis.clean import DataError, IdParams, prepare
    from analysis.coding import code_context
    from instrument import InstrumentError, LavaanSyntaxError, load_instrument, read_model
    from instrument.schema import model_problems
    from pipeline.ingest import read_export

    study = Study(Path(instrument_path), Path(data_path), Path(model_path) if model_path else None)
    problems: list[str] = []
    inst = None
    try:
        inst = load_instrument(instrument_path)
        problems += [f"{instrument_path}: {p}" for p in model_problems(inst)]
    except InstrumentError as exc:
        problems += [f"{instrument_path}: {p}" for p in exc.problems]
    study.instrument = inst
    if study.model_path is None and inst is not None and inst.model is not None:
        study.model_path = inst.model

    model = None
    if study.model_path is not None:
        try:
            model = read_model(study.model_path)
        except LavaanSyntaxError as exc:
            problems.append(f"{study.model_path}: {exc}")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{study.model_path}: cannot be read as UTF-8 text ({exc})")
    study.model = model

    prepared = raw = None
    try:
        raw = read_export(data_path)
    except InputError as exc:
        problems.append(str(exc))
    if raw is not None and inst is not None:
        columns = set(raw.cells.columns)
        missing = [i for i in inst.items if i.id not in columns]
        for item in missing[:MAX_LISTED]:
            problems.append(f"{data_path}: no column {item.id!r} (item {item.id} of construct {item.construct} in "
                            f"{instrument_path}); the export needs a column per item id")
        if len(missing) > MAX_LISTED:
            problems.append(f"{data_path}: and {len(missing) - MAX_LISTED} more item columns missing")
        if not missing:
            try:
                prepared = prepare(raw.cells, inst, source=str(data_path), qualtrics=raw.qualtrics,
                                   declared_missing=raw.declared_missing, ids=IdParams(respondent_ids="keep"))
            except DataError as exc:
                problems += [f"{data_path}: {p}" for p in exc.problems]
            except InputError as exc:
                problems.append(str(exc))

    data = code_context(prepared.data, inst) if prepared is not None else None
    if model is not None and inst is not None:
        problems += _model_problems(model, study.model_path, inst, instrument_path, data_path,
                                    set(raw.cells.columns) if raw is not None else set())
    if model is not None and data is not None and not problems:
        from analysis.sem.api import refuse_unidentified

        try:
            refuse_unidentified(model, data, where=str(study.model_path), missing="listwise")
        except InputError as exc:
            problems.append(str(exc))

    if data is not None:
        n_items = len(inst.item_ids)
        candidates = _candidates(inst, data, n_items)
        if group is not None:
            q = next((c for c in inst.context if c.id == group), None)
            if q is None:
                names = ", ".join(c.id for c in inst.context) or "none"
                problems.append(f"--group {group}: not a context question of {instrument_path} (its context "
                                f"questions: {names}); a grouping column must be one, so the clean stage keeps it")
            elif q.personal or q.type not in ("categorical", "integer"):
                problems.append(f"--group {group}: {instrument_path} context question {group!r} is "
                                f"{'personal data' if q.personal else 'free text'}; group by a categorical question")
            elif group not in data.columns:
                problems.append(f"--group {group}: no column {group!r} in {data_path}")
            else:
                big, need = _group_fit(candidates[group], n_items)
                if len(big) < 2:
                    problems.append(
                        f"--group {group}: column {group!r} of {data_path} needs at least 2 groups with {need} or "
                        f"more respondents in the CFA half (about {math.ceil(need / (1 - SPLIT_SHARE))} in the "
                        f"export; invariance.min_group_size {MIN_GROUP_SIZE}, split.share {SPLIT_SHARE}); it has "
                        f"{_show_counts(candidates[group])}")
                else:
                    study.group, study.group_sizes = group, candidates[group]
        else:
            ranked = []
            for name, counts in candidates.items():
                big, need = _group_fit(counts, n_items)
                if len(big) >= 2:
                    ranked.append((-sum(counts[g] for g in big), name))
            if ranked:
                study.group = min(ranked)[1]
                study.group_sizes = candidates[study.group]
                study.notes.append(f"grouping column: {study.group} ({_show_counts(study.group_sizes)}), the context "
                                   "question whose groups big enough for the invariance models hold the most "
                                   "respondents (--group COLUMN chooses another)")
            else:
                shown = "; ".join(f"{n}: {_show_counts(c)}" for n, c in candidates.items()) or \
                    "the instrument has no categorical context question answered in the data"
                need = _group_fit({}, n_items)[1]
                study.notes.append(f"no grouping column fits ({shown}); one needs at least 2 groups of "
                                   f"{math.ceil(need / (1 - SPLIT_SHARE))} or more respondents, so that each has "
                                   f"{need} in the CFA half: the invariance stage is left out and the split is not "
                                   "stratified")
    if problems:
        raise InitProblems(problems)
    if study.model_path is None:
        study.notes.append(f"no structural model (--model, or model: in {Path(instrument_path).name}): the sem stage "
                           "is left out; the report covers the measurement model")
    return study


def _model_problems(model, model_path, inst, instrument_path, data_path, raw_columns) -> list[str]:
    """Observed variables of the model that the clean data will not have."""
    columns = set(inst.item_ids) | set(inst.model_columns)
    context = {q.id: q for q in inst.context}
    problems = []
    for v in model.observed:
        if v in columns:
            continue
        if v in context and context[v].id not in columns:
            q = context[v]
            why = ("is personal data, never written" if q.personal else "is free text" if q.type == "text" else
                   "is categorical: give it a coding (dummy or ordinal) in the instrument and use its coded "
                   f"columns ({', '.join(sorted(q.model_columns)) or 'none yet'})")
            problems.append(f"{model_path}: variable {v!r} is a context question of {instrument_path} that {why}")
        elif v in raw_columns:
            problems.append(f"{model_path}: variable {v!r} is a column of {data_path} but not an item or context "
                            f"question of {instrument_path}; the clean stage keeps only the instrument's columns "
                            "(add it under context:)")
        else:
            problems.append(f"{model_path}: variable {v!r} is neither a latent variable of the model (no {v} =~ ...) "
                            f"nor a column of {data_path} that {instrument_path} defines")
    return problems


# --------------------------------------------------------------------------- writing the study


def _safe(name: str) -> str:
    stem, suffix = os.path.splitext(name)
    stem = SAFE_NAME.sub("_", stem).strip("._") or "file"
    return stem + suffix.lower()


def _hypotheses_text(model, model_name: str) -> str:
    lines = [f"# Hypotheses about the parameters of {model_name}: id -> statement and the sign each",
             "# parameter is expected to have (positive or negative); a part is supported when its",
             "# interval excludes zero on that side. Written empty by `gapscale init`; for example:",
             "#", "# H1:", "#   statement: ...", "#   expect: {a: positive}        # a label, a := name or \"y ~ x\"",
             "# Other parts a hypothesis may have (analysis/hypotheses.py has the format):",
             "#   distinct: {constructs: [A, B], htmt_below: 0.85, correlation_below: 1}   # A and B are distinct",
             "#   groups: {column: G, expect: {a: {larger_in: [g1], than: [g2, g3]}}}     # a path differs by group",
             "#   source: invariance                                                     # measurement invariance",
             "#"]
    regressions = [st for st in model.statements if st.op == "~"] if model is not None else []
    defined = list(model.defined) if model is not None else []
    if regressions or defined:
        lines.append("# The model's parameters that could carry a hypothesis:")
        for st in regressions:
            ref = st.label or f"{st.lhs} ~ {st.rhs}"
            lines.append(f"#   {ref}{'' if not st.label else f'   ({st.lhs} ~ {st.rhs})'}")
        for st in defined:
            lines.append(f"#   {st.lhs}   (defined: {st.lhs} := ...)")
    lines.append("{}")
    return "\n".join(lines) + "\n"


def _copy_instrument(study: Study, target: Path) -> tuple[Path, Path | None]:
    """Copy the instrument (and the model its ``model:`` key names, keeping that key valid) into
    ``target``; return the copy and the copied model."""
    from instrument.safe_yaml import read_yaml

    inst_copy = target / _safe(study.instrument_path.name)
    text = study.instrument_path.read_text(encoding="utf-8-sig")
    own_model = None
    if study.instrument.model is not None:
        raw = (read_yaml(study.instrument_path) or {}).get("model")
        rel = Path(raw)
        if not rel.is_absolute() and ".." not in rel.parts and SAFE_NAME.search(rel.as_posix().replace("/", "")) is None:
            own_model = target / rel
        else:
            own_model = target / _safe(rel.name)
            text, count = re.subn(r"(?m)^model:.*$", f"model: {own_model.name}", text)
            if count != 1:
                raise InputError(f"{study.instrument_path}: model: cannot be pointed at the copied model file; write "
                                 "it as a top-level 'model: FILE' line")
        own_model.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(study.instrument.model, own_model)
    inst_copy.write_text(text, encoding="utf-8")
    return inst_copy, own_model


def _dvc(directory: Path, *args) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=directory, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {directory}: {(done.stderr or done.stdout).strip()}")


def _inside_git(directory: Path) -> Path | None:
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return None


def run(directory, instrument_path, data_path, model_path=None, group=None, dvc: bool = True) -> dict:
    """Check the inputs (:func:`check`), then write the study into ``directory``. Returns what was
    written and chosen."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InitProblems([f"{directory}: exists and is not an empty directory; give a new one"])
    study = check(instrument_path, data_path, model_path, group)

    directory.mkdir(parents=True, exist_ok=True)
    inst_dir = directory / "instrument"
    inst_dir.mkdir()
    inst_copy, own_model = _copy_instrument(study, inst_dir)
    model_copy = hypotheses = None
    if study.model_path is not None:
        if own_model is not None and Path(study.model_path).resolve() == Path(study.instrument.model).resolve():
            model_copy = own_model
        else:
            model_copy = inst_dir / _safe(Path(study.model_path).name)
            if model_copy.exists() or model_copy == inst_copy:
                model_copy = inst_dir / ("sem_" + model_copy.name)
            shutil.copyfile(study.model_path, model_copy)
        hypotheses = inst_dir / f"{model_copy.stem}.hypotheses.yaml"
        hypotheses.write_text(_hypotheses_text(study.model, model_copy.name), encoding="utf-8")
    raw_dir = directory / "data" / "raw"
    raw_dir.mkdir(parents=True)
    export = raw_dir / _safe(study.data_path.name)
    shutil.copyfile(study.data_path, export)

    rel = lambda p: p.relative_to(directory).as_posix()  # noqa: E731
    structural = study.model is not None and bool(study.model.by_op("~"))
    notes = [line for note in study.notes for line in textwrap.wrap(note, 96)]
    context = dict(simulated=False, version=_version(), notes=notes, instrument=rel(inst_copy),
                   model=rel(model_copy) if model_copy else None, hypotheses=rel(hypotheses) if hypotheses else None,
                   raw=rel(raw_dir), responses=rel(export), truth=None, questionnaire="data/processed/questionnaire",
                   interim="data/interim", processed="data/processed", code_stamp=CODE_STAMP,
                   code_deps=_code_deps(["${code}"]), invariance=study.group is not None,
                   structural=structural and study.group is not None)
    (directory / "dvc.yaml").write_text(render_dvc(context), encoding="utf-8")
    (directory / "params.yaml").write_text(render_params(study.group, study.group), encoding="utf-8")
    stages = ["code", "render", "clean", "split", "efa", "cfa", "reliability"] + \
        (["invariance"] if study.group else []) + (["sem"] if model_copy else []) + ["report"]
    (directory / "README.md").write_text(_readme(directory, study, context, stages), encoding="utf-8")
    if dvc:
        git_root = _inside_git(directory.resolve())
        _dvc(directory, "init", "-q", *(["--no-scm"] if git_root is None else
                                        [] if git_root == directory.resolve() else ["--subdir"]))
        _dvc(directory, "add", "-q", rel(export))
    return {"directory": str(directory), "instrument": rel(inst_copy), "model": context["model"],
            "hypotheses": context["hypotheses"], "data": rel(export), "group": study.group, "stages": stages,
            "notes": study.notes}


def _readme(directory: Path, study: Study, context: dict, stages: list[str]) -> str:
    lines = [f"# {study.instrument.name}: a gapscale study", "",
             f"Written by `gapscale init` (gapscale {context['version']}). Run the analysis with:", "",
             "```sh", "dvc repro", "```", "",
             f"The report is `data/processed/report/report.html` (and `report.md`). Stages: {', '.join(stages)}.", "",
             f"- instrument: `{context['instrument']}`",
             f"- structural model: `{context['model']}`" if context["model"] else "- no structural model",
             f"- hypotheses: `{context['hypotheses']}` (empty: give each parameter you expect a sign)"
             if context["hypotheses"] else None,
             f"- data: `{context['responses']}` (a copy of {study.data_path.name}, tracked by DVC)",
             f"- grouping column (split.stratify, invariance.group in params.yaml): `{study.group}`"
             if study.group else "- no grouping column: no invariance stage", ""]
    if study.notes:
        lines += ["Choices made:", ""] + [f"- {n}" for n in study.notes] + [""]
    lines += ["Every path is in `dvc.yaml` (`vars`), every setting in `params.yaml`; competing models go under",
              "`sem.competing` in params.yaml. `gapscale COMMAND --help` describes each stage.", ""]
    return "\n".join(x for x in lines if x is not None)


if __name__ == "__main__":  # python -m pipeline.init > dvc.yaml: the default study's dvc.yaml
    sys.stdout.write(render_dvc(default_context()))
