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
  (construct definitions, then every item with the 1-4 relevance scale and, for the item sort,
  the list of construct ids without telling which is intended) and ``ratings_template.csv``
  (one row per item, ``expert,item,relevance,assigned,comment``, to copy per expert);
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
from pipeline.io import output_dir, read_data, write_csv, write_json, write_text

__all__ = ["run", "render_form", "simulate", "neighbour_constructs", "OUTPUTS", "FORM_OUTPUTS", "PANEL_OUTPUTS"]

OUTPUTS = ("content_items.csv", "content_scale.csv", "content_flags.csv", "content_table_apa.csv", "content.json")
FORM_OUTPUTS = ("content_form.md", "content_form.html", "ratings_template.csv")
PANEL_OUTPUTS = ("ratings.csv", "truth.json")

RELEVANCE_LABELS = {1: "not relevant", 2: "somewhat relevant", 3: "quite relevant", 4: "highly relevant"}


def _items(inst) -> dict[str, str]:
    return {i.id: i.construct for i in inst.items}


def run(instrument_path, ratings_path, out, *, essential_min: int = 3, alpha: float = 0.05,
        sort_choices: int | None = None, truth_path=None) -> dict:
    """Compute the content-validity indices of ``ratings_path`` and write :data:`OUTPUTS` into ``out``."""
    inst = load_instrument(instrument_path)
    items = _items(inst)
    raw = read_data(ratings_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
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


def simulate(instrument_path, out, *, n_experts: int = 12, n_ambiguous: int = 6, seed: int = 0) -> dict:
    """Draw a simulated panel with ``n_ambiguous`` planted items and write :data:`PANEL_OUTPUTS`."""
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


def render_form(instrument_path, out, *, item_sort: bool = True) -> list[Path]:
    """Write the experts' rating form (Markdown, HTML) and the CSV template into ``out``."""
    inst = load_instrument(instrument_path)
    out = output_dir(out)
    constructs = [(c.id, c.label or c.id, " ".join((c.definition or "").split())) for c in inst.constructs]
    scale = "; ".join(f"{k} = {v}" for k, v in RELEVANCE_LABELS.items())
    intro = ("You are asked, as an expert, to judge each item of this questionnaire. "
             f"Rate how relevant the item is to the definition of its construct ({scale}).")
    sort_intro = ("Item sort: without looking at the construct the item was written for, write the id of the "
                  "construct (from the list of definitions) that the item measures best.")
    md = [f"# Content validation: {inst.name}", "", intro, ""]
    if item_sort:
        md += [sort_intro, ""]
    md += ["## Construct definitions", "", "| id | construct | definition |", "|---|---|---|"]
    md += [f"| {i} | {lab} | {d} |" for i, lab, d in constructs]
    md += ["", "## Items", "", "Enter your ratings in `ratings_template.csv` (one row per item; keep the `item` "
           "column as it is; put your name or code in `expert`).", ""]
    if item_sort:
        md += ["| item | text | relevance (1-4) | construct id |", "|---|---|---|---|"]
    else:
        md += ["| item | text | relevance (1-4) |", "|---|---|---|"]
    items = list(inst.items) if item_sort else [i for c in inst.constructs for i in c.items]
    for it in items:
        text = " ".join((it.text or f"[{it.id}: no text given]").split()).replace("|", "\\|")
        md.append(f"| {it.id} | {text} | | |" if item_sort else f"| {it.id} | {text} | |")
    write_text("\n".join(md) + "\n", out / "content_form.md")

    e = html.escape
    h = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
         f"<title>Content validation: {e(inst.name)}</title></head><body>",
         f"<h1>Content validation: {e(inst.name)}</h1>", f"<p>{e(intro)}</p>"]
    if item_sort:
        h.append(f"<p>{e(sort_intro)}</p>")
    h += ["<h2>Construct definitions</h2>", "<table><tr><th>id</th><th>construct</th><th>definition</th></tr>"]
    h += [f"<tr><td>{e(i)}</td><td>{e(lab)}</td><td>{e(d)}</td></tr>" for i, lab, d in constructs]
    h += ["</table>", "<h2>Items</h2>", "<table><tr><th>item</th><th>text</th><th>relevance</th>"
          + ("<th>construct id</th>" if item_sort else "") + "</tr>"]
    for it in items:
        text = " ".join((it.text or f"[{it.id}: no text given]").split())
        radios = " ".join(f"<label><input type=\"radio\" name=\"{e(it.id)}\" value=\"{k}\"> {k}</label>"
                          for k in RELEVANCE_LABELS)
        cell = "<td><select name=\"assigned_{0}\"><option></option>{1}</select></td>".format(
            e(it.id), "".join(f"<option>{e(c[0])}</option>" for c in constructs)) if item_sort else ""
        h.append(f"<tr><td>{e(it.id)}</td><td>{e(text)}</td><td>{radios}</td>{cell}</tr>")
    h += ["</table>", "</body></html>"]
    write_text("\n".join(h) + "\n", out / "content_form.html")

    template = pd.DataFrame({"expert": "", "item": [it.id for it in items], "relevance": "",
                             "assigned": "", "comment": ""})
    if not item_sort:
        template = template.drop(columns="assigned")
    write_csv(template, out / "ratings_template.csv")
    return [out / f for f in FORM_OUTPUTS]

