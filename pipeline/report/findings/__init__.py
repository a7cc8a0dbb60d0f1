"""Findings: pure functions from the stages' outputs to the report's sections.

Each ``*_section`` function takes what a stage wrote (:class:`~pipeline.report.model.StageOutputs`),
the cut-offs of params.yaml and a :class:`~pipeline.report.model.Findings` collector, and returns a
:class:`~pipeline.report.model.Section` of paragraphs, bullet lists, tables (strings, formatted by
:mod:`analysis.apa`, the one place numbers are formatted) and figure descriptions. No file is read
or written here and nothing is drawn: :func:`build_report` is a function of its arguments, so each
section is tested on small fixtures (tests/test_report_findings.py).
"""
from __future__ import annotations

import re

from analysis.errors import InputError
from pipeline.report.findings.cfa import cfa_section
from pipeline.report.findings.content import content_section
from pipeline.report.findings.efa import efa_section
from pipeline.report.findings.invariance import invariance_section
from pipeline.report.findings.methods import methods_section, software_versions
from pipeline.report.findings.power import power_section
from pipeline.report.findings.reliability import reliability_section
from pipeline.report.findings.sample import sample_section
from pipeline.report.findings.sem import sem_section
from pipeline.report.model import (SECTIONS, Figure, Findings, ReferenceList, Report, Section, StageOutputs,
                                   Table)

__all__ = ["build_report", "content_section", "power_section", "sample_section", "efa_section", "cfa_section", "reliability_section",
           "invariance_section", "sem_section", "methods_section", "software_versions", "about_section"]


def build_report(outputs: dict[str, StageOutputs], cuts: dict, title: str | None = None,
                 labels: dict | None = None, versions: dict | None = None) -> Report:
    """Build every section from the stage outputs; number the tables and figures in the order they
    appear; add the methods-and-results text and the reference list of every method cited.

    ``versions`` (:func:`~pipeline.report.findings.methods.software_versions`) names the software
    in the methods text; without it the text has no software paragraph."""
    findings = Findings()
    figures: dict[str, Figure] = {}
    content = outputs.get("content") or StageOutputs("content", None, None, {}, ())
    sections = [
        content_section(content, findings),
        sample_section(outputs["clean"], outputs["split"], findings),
        efa_section(outputs["efa"], findings, cuts, figures),
        cfa_section(outputs["cfa"], findings, cuts, outputs["split"].ran),
        reliability_section(outputs["reliability"], findings, cuts, labels or {}),
        invariance_section(outputs["invariance"], findings, cuts, figures),
        sem_section(outputs["sem"], findings, cuts, figures),
        power_section(outputs.get("power") or StageOutputs("power", None, None, {}, ()), findings, figures),
    ]
    if all(not s.ran for s in sections):
        raise InputError("no stage outputs found: give the stage output directories (--clean, --efa, ...) of a "
                         "pipeline that has run")
    sections.append(methods_section(outputs, findings, cuts, versions))
    refs = Section("references", SECTIONS["references"])
    refs.blocks.append(ReferenceList(tuple(findings.citations.entries())) if findings.citations.keys else
                       "No method was cited.")
    sections.append(refs)
    simulated = any(bool((o.metrics or {}).get("simulated")) for o in outputs.values())
    tables = []
    for sec in sections:
        for b in sec.blocks:
            if isinstance(b, Table):
                tables.append(b)
                b.number = len(tables)
    shown = [b for sec in sections for b in sec.blocks if isinstance(b, Figure)]
    for i, fig in enumerate(shown):  # in order of appearance; a figure not shown has no number
        fig.number = i + 1
    for sec in sections:  # resolve {table:key} references
        sec.blocks = [resolve(b, tables) if isinstance(b, str) else b for b in sec.blocks]

    summary = Section("summary", SECTIONS["summary"])
    if simulated:
        summary.blocks.append("**The data are simulated** (the simulate stage drew them from a population model with "
                              "planted defects); the results show what the pipeline does, not what is true of any "
                              "population.")
    if findings.tested:
        summary.blocks.append("What was tested: " + "; ".join(findings.tested) + ".")
    summary.blocks.append("What held:" if findings.held else "Nothing that was tested held.")
    if findings.held:
        summary.blocks.append([capital(x) for x in findings.held])
    summary.blocks.append("What did not hold:" if findings.not_held else "Every check that was made held.")
    if findings.not_held:
        summary.blocks.append([capital(x) for x in findings.not_held])
    if findings.not_run:
        summary.blocks.append("Not run (no outputs found): " + ", ".join(findings.not_run) + ".")
    summary.blocks.append(f"Warnings raised by the stages ({len(findings.warnings)}):" if findings.warnings else
                          "No stage raised a warning.")
    if findings.warnings:
        summary.blocks.append(list(dict.fromkeys(findings.warnings)))

    metrics = {
        "simulated": simulated,
        "sections_reported": [s.key for s in sections if s.ran],
        "sections_not_run": [s.key for s in sections if not s.ran],
        "held": len(findings.held), "not_held": len(findings.not_held), "warnings": len(findings.warnings),
        "tables": len(tables), "figures": len(shown),
        **findings.numbers,
    }
    report = Report(title or "Scale validation report", simulated, summary, sections, findings, tables, figures, metrics)
    report.versions = dict(versions or {})
    report.about = about_section(report)
    return report


def resolve(text: str, tables: list) -> str:
    numbers = {t.key: t.number for t in tables}
    return re.sub(r"\{table:(\w+)\}", lambda mt: str(numbers.get(mt.group(1), "?")), text)


def capital(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s



def about_section(report: Report) -> Section:
    sec = Section("about", SECTIONS["about"])
    sec.blocks.append("Written by `gapscale report` from the outputs of the pipeline's stages; every number is read "
                      "from those files and rounded only here, in APA style (two decimals; fit indices with three; "
                      "no leading zero for statistics that cannot exceed 1; p with three decimals, p < .001). Every "
                      "table is also in tables/ as CSV, and every figure in figures/ as SVG.")
    if report.versions:
        sec.blocks.append("Software: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()) + ".")
    sec.blocks.append(f"Sections reported: {', '.join(SECTIONS[k] for k in report.metrics['sections_reported'])}."
                      + (f" Not run: {', '.join(SECTIONS[k] for k in report.metrics['sections_not_run'])}."
                         if report.metrics["sections_not_run"] else ""))
    return sec
