"""Rendering: every item in every output, no reverse keys shown, Qualtrics Advanced Format."""
from __future__ import annotations

import csv
import html
import re
from html.parser import HTMLParser

import pytest

from instrument import load_instrument
from instrument.render import CODEBOOK_COLUMNS, codebook, to_html, to_markdown, to_qualtrics
from tests.conftest import CONTINUOUS

# Tags of the Qualtrics Advanced Format that gapscale writes.
QUALTRICS_TAGS = re.compile(
    r"^\[\[(AdvancedFormat|Block:[^\]]+|PageBreak|ID:[A-Za-z][A-Za-z0-9_]*|AdvancedChoices|Choice:\d+|"
    r"Question:(DB|MC:SingleAnswer:(Horizontal|Vertical)|TE:SingleLine))\]\]$"
)


def parse_qualtrics(text: str) -> dict[str, dict]:
    """Check the structure of an Advanced Format file and return its questions by ID.

    Rules checked: the first line is [[AdvancedFormat]]; every tag is a known tag with no spaces
    inside the brackets; every [[Question:...]] is followed by an [[ID:...]] and one line of text;
    IDs are unique; [[Choice:k]] lines follow [[AdvancedChoices]] and each is followed by its
    label; questions are separated by blank lines; no question precedes the first block.
    """
    lines = text.split("\n")
    assert lines[0] == "[[AdvancedFormat]]"
    assert text.endswith("\n") and not text.endswith("\n\n")
    questions: dict[str, dict] = {}
    in_block = False
    k = 1
    while k < len(lines):
        line = lines[k]
        if line.startswith("[["):
            assert QUALTRICS_TAGS.match(line), f"line {k + 1}: unknown or malformed tag {line!r}"
        if line.startswith("[[Block:"):
            in_block = True
        if line.startswith("[[Question:"):
            assert in_block, f"line {k + 1}: question before the first block"
            assert lines[k - 1] == "", f"line {k + 1}: a question must follow a blank line"
            qtype = line[len("[[Question:"):-2]
            m = re.match(r"^\[\[ID:(.+)\]\]$", lines[k + 1])
            assert m, f"line {k + 2}: [[ID:...]] must follow the question tag"
            qid = m.group(1)
            assert qid not in questions, f"duplicate question ID {qid}"
            body = lines[k + 2]
            assert body and not body.startswith("[["), f"line {k + 3}: question text missing"
            choices = {}
            j = k + 3
            if j < len(lines) and lines[j] == "[[AdvancedChoices]]":
                j += 1
                while j < len(lines) and lines[j].startswith("[[Choice:"):
                    label = lines[j + 1]
                    assert label and not label.startswith("[["), f"line {j + 2}: choice label missing"
                    choices[int(lines[j][len("[[Choice:"):-2])] = label
                    j += 2
                assert choices, f"line {j}: [[AdvancedChoices]] without choices"
            assert j == len(lines) or lines[j] == "", f"line {j + 1}: a blank line must end the question"
            questions[qid] = {"type": qtype, "text": body, "choices": choices}
            k = j
        k += 1
    return questions


def test_markdown_has_every_item_in_order(default_instrument):
    md = to_markdown(default_instrument)
    positions = [md.index(" ".join(i.text.split())) for i in default_instrument.items]
    assert all(p > 0 for p in positions)
    for c in default_instrument.attention_checks:
        assert " ".join(c.text.split()) in md
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", md, flags=re.M)]
    n_questions = len(default_instrument.items) + 2 + len(default_instrument.context)
    assert numbers == list(range(1, n_questions + 1))


def test_html_is_standalone_and_has_every_item(default_instrument):
    page = to_html(default_instrument)

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.radios, self.stack, self.external = {}, [], []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "input" and a.get("type") == "radio":
                self.radios.setdefault(a["name"], []).append(a["value"])
            if tag in ("script", "link", "img", "iframe") or "src" in a or a.get("href", "#") != "#":
                self.external.append(tag)
            if tag not in ("input", "meta", "br"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
            self.stack.pop()

    parser = Collect()
    parser.feed(page)
    assert parser.stack == [] and parser.external == []
    for item in default_instrument.items:
        # the scale's points, then the answers outside it the item offers (N/A 8 on two items, don't know 9)
        assert parser.radios[item.id] == [str(p) for p in range(1, 8)] + [str(o.code) for o in item.outside]
        assert html.escape(" ".join(item.text.split())) in page
    assert parser.radios["relationship_type"] == ["B2B", "B2C", "B2G", "G2C"]


def test_respondent_versions_do_not_reveal_reverse_keys_or_constructs(default_instrument):
    inst = default_instrument
    for text in (to_markdown(inst), to_html(inst), to_qualtrics(inst)):
        low = text.lower()
        assert "reverse" not in low and "(r)" not in low
        for c in inst.constructs:
            assert c.label not in text
            assert not re.search(rf"\b{c.id}\b(?!_)", text), c.id
    # The researcher's codebook, by contrast, has them.
    cb = codebook(inst)
    assert set(cb.loc[cb["reverse"] == True, "variable"]) == {i.id for i in inst.items if i.reverse}  # noqa: E712


def test_codebook_lists_every_column(default_instrument, tmp_path):
    cb = codebook(default_instrument)
    assert list(cb.columns) == CODEBOOK_COLUMNS
    assert list(cb["variable"][: len(default_instrument.columns)]) == list(default_instrument.columns)
    items = cb[cb["kind"] == "item"].set_index("variable")
    assert list(items.index) == list(default_instrument.item_ids)
    assert items.loc["GAP1_1", "construct"] == "GAP1"
    assert items.loc["GAP1_1", "allowed_values"].startswith("1=Strongly disagree; 2=Disagree")
    checks = cb[cb["kind"] == "attention_check"].set_index("variable")
    assert checks.loc["ATT1", "expected"] == "2"
    assert set(cb.loc[cb["kind"] == "personal_data", "variable"]) == {"IPAddress", "RecipientEmail"}
    path = tmp_path / "codebook.csv"
    cb.to_csv(path, index=False)
    with path.open() as fh:
        assert next(csv.reader(fh)) == CODEBOOK_COLUMNS


def test_qualtrics_file_follows_the_advanced_format(default_instrument):
    questions = parse_qualtrics(to_qualtrics(default_instrument))
    for item in default_instrument.items:
        q = questions[item.id]
        assert q["type"] == "MC:SingleAnswer:Horizontal"
        assert q["text"] == " ".join(item.text.split())
        assert q["choices"] == {**{p: default_instrument.scale.labels[p] for p in range(1, 8)},
                                **{o.code: o.label for o in item.outside}}
    for check in default_instrument.attention_checks:
        assert questions[check.id]["choices"][int(check.expected[0])]
    assert list(questions["relationship_type"]["choices"].values()) == ["B2B", "B2C", "B2G", "G2C"]
    assert questions["experience_years"]["type"] == "TE:SingleLine"
    assert questions["instructions"]["type"] == "DB"


def test_third_party_instrument_renders(write_yaml):
    inst = load_instrument(write_yaml(CONTINUOUS))
    questions = parse_qualtrics(to_qualtrics(inst))
    assert set(inst.item_ids) <= set(questions)
    assert all(questions[i]["type"] == "TE:SingleLine" for i in inst.item_ids)
    md = to_markdown(inst)
    assert all(f"[{i}: no text given]" in md for i in inst.item_ids)
    assert 'type="number"' in to_html(inst)
    assert list(codebook(inst)["variable"]) == list(inst.item_ids)


@pytest.mark.parametrize("text", ["A [[tag]] inside", "two\nlines"])
def test_qualtrics_text_cannot_break_the_format(write_yaml, text):
    inst = load_instrument(write_yaml(f"""
        name: x
        scale: {{type: likert, min: 1, max: 3}}
        constructs:
          - id: F
            items: [{{id: F_1, text: {text!r}}}]
    """))
    questions = parse_qualtrics(to_qualtrics(inst))
    assert "[[" not in questions["F_1"]["text"]


def test_answers_outside_the_scale_are_shown_with_their_codes(default_instrument):
    from instrument.render import codebook, to_markdown, to_qualtrics
    assert {i.id for i in default_instrument.items if any(o.name == "not_applicable" for o in i.outside)} == \
        {"CMIS_2", "ICHG_3"}
    md = to_markdown(default_instrument)
    assert md.count("; or 9 = Don't know.*") == 6  # the shared legend of each of the six pages of items
    assert md.count("*(or 8 = Not applicable)*") == 2
    txt = to_qualtrics(default_instrument)
    block = txt[txt.index("[[ID:CMIS_2]]"):].split("\n\n")[0].splitlines()
    assert block[-4:] == ["[[Choice:8]]", "Not applicable", "[[Choice:9]]", "Don't know"]
    book = codebook(default_instrument).set_index("variable")
    assert book.at["CMIS_2", "allowed_values"].endswith("outside the scale (missing): 8=Not applicable; 9=Don't know")
    assert book.at["org_id", "kind"] == "cluster"
