"""Stage ``content``: content validity from an expert panel, the panel's rating form, a simulated panel.

Three entry points (commands ``gapscale content``, ``content-form``, ``content-panel``):

- :func:`run` reads a panel's ratings (the long CSV documented in :mod:`analysis.content`:
  ``expert,item,relevance[,assigned][,comment]``) and writes ``content_items.csv`` (per item:
  I-CVI, modified kappa, CVR with its exact critical value, p_sa, c_sv with their tests, flag and
  reasons), ``content_scale.csv`` (S-CVI/Ave and S-CVI/UA per construct and for the scale),
  ``content_flags.csv`` (one row per flagged item and reason), ``content_table_apa.csv`` (the
  table for the paper) and ``content.json`` (headline figures; with ``truth``, the precision and
  recall of the flags against the planted items of a simulated panel);
- :func:`render_form` writes the form experts fill in: ``content_form.md``, ``content_form.html``
  (construct definitions; Part 1, the blind item sort under neutral codes in a random order;
  Part 2, relevance 1-4 under each construct's definition), ``ratings_template.csv`` (one row
  per item, ``expert,item,relevance,assigned,comment``, to copy per expert) and
  ``form_key.csv`` (code -> item; for the researcher, ``gapscale content --form-key``);
- :func:`simulate` draws a simulated panel with planted ambiguous items and writes
  ``ratings.csv`` and ``truth.json`` (which items were planted, into which neighbour).
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from analysis.content import (apa_content_table, choose_ambiguous, content_validity, recovery,
                              simulate_panel, validate_ratings)
from analysis.errors import InputError
from analysis.split import stage_rng
from instrument import load_instrument
from pipeline.io import output_dir, read_data, read_params, read_seed, section, write_csv, write_json, write_text

__all__ = ["run", "settings", "DEFAULTS", "render_form", "apply_form_key", "simulate", "neighbour_constructs", "OUTPUTS", "FORM_OUTPUTS", "PANEL_OUTPUTS"]

OUTPUTS = ("content_items.csv", "content_scale.csv", "content_flags.csv", "content_table_apa.csv", "content.json")
FORM_OUTPUTS = ("content_form.md", "content_form.html", "ratings_template.csv", "form_key.csv")
PANEL_OUTPUTS = ("ratings.csv", "truth.json")

# params.yaml `content:` section (the command line's options override it)
DEFAULTS = {"experts": 12, "ambiguous": 6, "essential": 3, "alpha": 0.05, "sort_choices": None}

RELEVANCE_LABELS = {1: "not relevant", 2: "somewhat relevant", 3: "quite relevant", 4: "highly relevant"}


def _items(inst) -> dict[str, str]:
    return {i.id: i.construct for i in inst.items}


def run(instrument_path, ratings_path, out, *, params_path=None, essential_min: int | None = None,
        alpha: float | None = None, sort_choices: int | None = None, truth_path=None, form_key=None) -> dict:
    """Compute the content-validity indices of ``ratings_path`` and write :data:`OUTPUTS` into ``out``.

    Settings: the options given here, else params' ``content:`` section (``essential``, ``alpha``,
    ``sort_choices``), else :data:`DEFAULTS`.
    """
    s = settings(read_params(params_path), essential=essential_min, alpha=alpha, sort_choices=sort_choices)
    essential_min, alpha, sort_choices = s["essential"], s["alpha"], s["sort_choices"]
    inst = load_instrument(instrument_path)
    items = _items(inst)
    raw = read_data(ratings_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if form_key is not None:
        raw = apply_form_key(raw, form_key, ratings_path)
    ratings = validate_ratings(raw, items, source=str(ratings_path))
    result = content_validity(ratings, items, essential_min=essential_min, alpha=alpha, sort_choices=sort_choices)
    metrics = {"source": Path(ratings_path).name, "instrument": Path(instrument_path).name, **result.summary}
    if truth_path is not None:
        truth = _read_truth(truth_path)
        metrics["simulated"] = True
        metrics["recovery"] = recovery(result.summary["flagged_items"], truth["ambiguous"])
    out = output_dir(out)
    write_csv(result.items, out / "content_items.csv")
    write_csv(result.scale, out / "content_scale.csv")
    write_csv(result.flags, out / "content_flags.csv")
    write_csv(apa_content_table(result.items), out / "content_table_apa.csv")
    write_json(metrics, out / "content.json")
    return metrics


def settings(params: dict, **overrides) -> dict:
    """The ``content:`` settings, each checked (an InputError names ``content.KEY``)."""
    s = section(params, "content", DEFAULTS, overrides)

    def whole(key, low):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise InputError(f"content.{key}: need a whole number >= {low}, got {v!r}"[:300])

    whole("experts", 2)
    whole("ambiguous", 0)
    if s["essential"] not in (3, 4) or isinstance(s["essential"], bool):
        raise InputError(f"content.essential: 3 or 4 (the lowest relevance counted as essential), got {s['essential']!r}")
    a = s["alpha"]
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
        raise InputError(f"content.alpha: need a number in (0, 1), got {a!r}"[:300])
    if s["sort_choices"] is not None:
        whole("sort_choices", 2)
    return s


def _read_truth(path) -> dict:
    try:
        truth = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(truth, dict) or not isinstance(truth.get("ambiguous"), list):
        raise InputError(f"{path}: key 'ambiguous': expected the list of planted items (the truth.json of "
                         "'gapscale content-panel')")
    return truth


def neighbour_constructs(inst) -> dict[str, str]:
    """Each construct's neighbour: the next construct of its section (the first after the last),
    or the next construct of the instrument when its section has no other."""
    ids = [c.id for c in inst.constructs]
    out = {}
    for k, c in enumerate(inst.constructs):
        same = [x.id for x in inst.constructs if x.section == c.section and x.id != c.id] if c.section else []
        if same:
            section_ids = [x.id for x in inst.constructs if x.section == c.section]
            out[c.id] = section_ids[(section_ids.index(c.id) + 1) % len(section_ids)]
        else:
            out[c.id] = ids[(k + 1) % len(ids)]
    return out


def simulate(instrument_path, out, *, params_path=None, n_experts: int | None = None, n_ambiguous: int | None = None,
             seed: int | None = None) -> dict:
    """Draw a simulated panel with ``n_ambiguous`` planted items and write :data:`PANEL_OUTPUTS`.

    Settings: the options given here, else params' ``seed`` and ``content:`` section (``experts``,
    ``ambiguous``), else :data:`DEFAULTS` (seed 0).
    """
    params = read_params(params_path)
    s = settings(params, experts=n_experts, ambiguous=n_ambiguous)
    n_experts, n_ambiguous, seed = s["experts"], s["ambiguous"], read_seed(params, seed)
    inst = load_instrument(instrument_path)
    if len(inst.constructs) < 2:
        raise InputError(f"{instrument_path}: a simulated item sort needs at least 2 constructs")
    items = _items(inst)
    rng = stage_rng(seed, "content-panel")
    neighbours = neighbour_constructs(inst)
    ambiguous = choose_ambiguous(items, n_ambiguous, rng)
    ratings = simulate_panel(items, neighbours, ambiguous, rng, n_experts=n_experts)
    out = output_dir(out)
    write_csv(ratings, out / "ratings.csv")
    truth = {"simulated": True, "instrument": Path(instrument_path).name, "seed": seed, "n_experts": n_experts,
             "ambiguous": ambiguous, "neighbour": {i: neighbours[items[i]] for i in ambiguous},
             "design": "clear items: relevance 3-4 with p .98, sorted correctly with p .98; ambiguous items: "
                       "relevance 3-4 with p .55, sorted into their construct with p .45, into the neighbour "
                       "construct with p .45 (analysis.content.simulate_panel)"}
    write_json(truth, out / "truth.json")
    return truth


def render_form(instrument_path, out, *, item_sort: bool = True, seed: int = 0) -> list[Path]:
    """Write the experts' rating form (Markdown, HTML), the CSV template and, with the item sort, the key.

    With ``item_sort`` the form has two parts. Part 1, done first, is the sort: every item under a
    neutral code (``S01``, ``S02``, ...) in a random order (``seed``), with the construct
    definitions but no hint of the intended construct (item ids such as ``GAP1_2`` would give it
    away). Part 2 is the relevance rating, items grouped under their construct's definition.
    The template's ``item`` column then holds the codes, and ``form_key.csv`` (code, item,
    construct; for the researcher, not for the experts) is passed to ``gapscale content
    --form-key`` to turn codes back into item ids. Without the sort, the form rates relevance
    only and the template uses the item ids.
    """
    inst = load_instrument(instrument_path)
    out = output_dir(out)
    items = list(inst.items)
    if item_sort:
        order = [items[k] for k in stage_rng(seed, "content-form").permutation(len(items))]
        width = len(str(len(items)))
        code = {it.id: f"S{n + 1:0{width}d}" for n, it in enumerate(order)}
    else:
        order, code = items, {it.id: it.id for it in items}
    constructs = [(c.id, c.label or c.id, " ".join((c.definition or "").split())) for c in inst.constructs]
    scale = "; ".join(f"{k} = {v}" for k, v in RELEVANCE_LABELS.items())

    def text(it):
        return " ".join((it.text or f"[{it.id}: no text given]").split())

    intro = ("Thank you for judging the items of this questionnaire as an expert. Enter your answers in "
             "ratings_template.csv: your name or code in every row of the expert column, and keep the item "
             "column as it is.")
    sort_intro = ("Part 1 (do it first, before reading Part 2): for each statement, write in the assigned column the "
                  "id of the construct, from the definitions above, that the statement measures best.")
    rel_intro = f"Part {2 if item_sort else 1}: rate how relevant each item is to the definition of its construct ({scale})."
    md = [f"# Content validation: {inst.name}", "", intro, "", "## Construct definitions", "",
          "| id | construct | definition |", "|---|---|---|"]
    md += [f"| {i} | {lab} | {d} |" for i, lab, d in constructs]
    if item_sort:
        md += ["", "## Part 1: item sort", "", sort_intro, "", "| code | statement | construct id |", "|---|---|---|"]
        md += [f"| {code[it.id]} | {_md(text(it))} | |" for it in order]
    md += ["", f"## Part {2 if item_sort else 1}: relevance", "", rel_intro, ""]
    for c in inst.constructs:
        md += [f"### {c.id}: {c.label or c.id}", "", " ".join((c.definition or "").split()), "",
               "| code | item | relevance (1-4) |", "|---|---|---|"]
        md += [f"| {code[it.id]} | {_md(text(it))} | |" for it in c.items]
        md.append("")
    write_text("\n".join(md), out / "content_form.md")

    e = html.escape
    h = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
         f"<title>Content validation: {e(inst.name)}</title></head><body>",
         f"<h1>Content validation: {e(inst.name)}</h1>", f"<p>{e(intro)}</p>",
         "<h2>Construct definitions</h2>", "<table><tr><th>id</th><th>construct</th><th>definition</th></tr>"]
    h += [f"<tr><td>{e(i)}</td><td>{e(lab)}</td><td>{e(d)}</td></tr>" for i, lab, d in constructs]
    h.append("</table>")
    if item_sort:
        options = "".join(f"<option>{e(c[0])}</option>" for c in constructs)
        h += ["<h2>Part 1: item sort</h2>", f"<p>{e(sort_intro)}</p>",
              "<table><tr><th>code</th><th>statement</th><th>construct id</th></tr>"]
        h += [f"<tr><td>{e(code[it.id])}</td><td>{e(text(it))}</td><td><select name=\"assigned_{e(code[it.id])}\">"
              f"<option></option>{options}</select></td></tr>" for it in order]
        h.append("</table>")
    h += [f"<h2>Part {2 if item_sort else 1}: relevance</h2>", f"<p>{e(rel_intro)}</p>"]
    for c in inst.constructs:
        h += [f"<h3>{e(c.id)}: {e(c.label or c.id)}</h3>", f"<p>{e(' '.join((c.definition or '').split()))}</p>",
              "<table><tr><th>code</th><th>item</th><th>relevance</th></tr>"]
        for it in c.items:
            radios = " ".join(f"<label><input type=\"radio\" name=\"relevance_{e(code[it.id])}\" value=\"{k}\"> {k}</label>"
                              for k in RELEVANCE_LABELS)
            h.append(f"<tr><td>{e(code[it.id])}</td><td>{e(text(it))}</td><td>{radios}</td></tr>")
        h.append("</table>")
    h.append("</body></html>")
    write_text("\n".join(h) + "\n", out / "content_form.html")

    template = pd.DataFrame({"expert": "", "item": [code[it.id] for it in order], "relevance": "",
                             "assigned": "", "comment": ""})
    written = [out / "content_form.md", out / "content_form.html", out / "ratings_template.csv"]
    if not item_sort:
        template = template.drop(columns="assigned")
    else:
        key = pd.DataFrame({"code": [code[it.id] for it in order], "item": [it.id for it in order],
                            "construct": [it.construct for it in order]})
        write_csv(key, out / "form_key.csv")
        written.append(out / "form_key.csv")
    write_csv(template, out / "ratings_template.csv")
    return written


def _md(s: str) -> str:
    return s.replace("|", "\\|")


def apply_form_key(raw: pd.DataFrame, key_path, ratings_path) -> pd.DataFrame:
    """Replace the neutral codes of the ``item`` column by item ids, from ``form_key.csv``
    (:func:`render_form`); item ids pass as they are. An unknown value is an InputError naming
    the row."""
    key = read_data(key_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for c in ("code", "item"):
        if c not in key.columns:
            raise InputError(f"{key_path}: no column {c!r}; a form key (form_key.csv of 'gapscale content-form') "
                             "has columns code, item, construct")
    dup = key["code"][key["code"].duplicated()]
    if len(dup):
        raise InputError(f"{key_path}: code {dup.iloc[0]!r} appears twice")
    mapping = dict(zip(key["code"].str.strip(), key["item"].str.strip()))
    known = set(mapping.values())
    if "item" not in raw.columns:
        return raw
    out = raw.copy()
    values = []
    for r, v in enumerate(out["item"].astype(str).str.strip(), start=1):
        if v in mapping:
            values.append(mapping[v])
        elif v in known:
            values.append(v)
        else:
            raise InputError(f"{ratings_path}: row {r} (line {r + 1}), column item: value {v[:80]!r} is neither a code "
                             f"of {Path(key_path).name} nor an item id")
    out["item"] = values
    return out
