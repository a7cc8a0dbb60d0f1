"""The instrument schema: what loads, and every error with its YAML path."""
from __future__ import annotations

import copy

import pytest
import yaml

from instrument import InstrumentError, load_instrument, parse_instrument
from tests.conftest import CONTINUOUS, MINIMAL_LIKERT

BASE = {
    "name": "Test scale",
    "scale": {"type": "likert", "min": 1, "max": 5},
    "sections": [{"id": "s1", "title": "Part one"}],
    "constructs": [
        {"id": "A", "section": "s1", "items": [{"id": "A_1", "reverse": False}, {"id": "A_2", "reverse": True}]},
        {"id": "B", "items": [{"id": "B_1"}, {"id": "B_2"}]},
    ],
    "attention_checks": [{"id": "ATT1", "expected": 2, "after": "A_2"}],
    "context": [{"id": "group", "type": "categorical", "values": ["x", "y"]}],
}


def problems_of(doc) -> list[str]:
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(doc, source="test.yaml")
    return exc.value.problems


def mutate(fn):
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


def test_base_document_is_valid():
    inst = parse_instrument(copy.deepcopy(BASE))
    assert inst.item_ids == ("A_1", "A_2", "B_1", "B_2")
    assert inst.item("A_2").reverse is True
    assert inst.item("B_1").reverse is False


def test_minimal_form_from_the_contract_loads(write_yaml):
    inst = load_instrument(write_yaml(MINIMAL_LIKERT))
    assert inst.name == "Example scale"
    assert inst.scale.points == (1, 2, 3, 4, 5, 6, 7)
    assert inst.scale.labels == {1: "Strongly disagree", 7: "Strongly agree"}
    assert inst.id_column == "respondent_id"
    assert inst.item_ids == ("GAP1_1",)
    assert inst.construct("GAP1").label == "Awareness gap"


def test_third_party_continuous_instrument_without_text_loads(write_yaml):
    inst = load_instrument(write_yaml(CONTINUOUS))
    assert inst.scale.type == "continuous" and inst.scale.points is None
    assert inst.construct_ids == ("verbal", "spatial", "speed")
    assert all(i.text is None for i in inst.items)
    assert inst.id_column is None
    assert inst.scale.contains(-12.5) and inst.scale.contains(1e6)


SUBSTANTIVE = ["IMVI", "IMVG", "IMVE", "GAP1", "GAP2", "GAP3", "GAP4", "GAP5", "AINF", "TRST", "MIST",
               "ISRV", "ICHG", "EXPC", "CMIS", "BLAM", "VCC", "VCD"]
REASONS = ("AINF", "TRST", "MIST", "ISRV", "ICHG", "EXPC", "CMIS", "BLAM")


def test_default_instrument_covers_every_construct(default_instrument):
    inst = default_instrument
    # in questionnaire order: the marker's section stands between the reasons and the outcomes
    assert list(inst.construct_ids) == SUBSTANTIVE[:16] + ["MARK", "VCC", "VCD", "KNOW"]
    for c in inst.constructs:
        assert 4 <= len(c.items) <= 5, c.id
        assert c.definition and c.source and c.label, c.id
        assert all(i.text for i in c.items)
    assert len(inst.items) == 81  # 17 constructs x 4, VCD 5, MARK 4, KNOW 4 (instrument/README.md)
    assert inst.scale.points == tuple(range(1, 8)) and len(inst.scale.labels) == 7
    # The reverse-keying policy of instrument/README.md: every item keyed in its construct's direction.
    assert not any(i.reverse for i in inst.items)
    assert len(inst.attention_checks) == 2
    ctx = {q.id: q for q in inst.context}
    assert ctx["relationship_type"].values == ("B2B", "B2C", "B2G", "G2C")
    assert {"role", "sector", "org_size", "country", "experience_years"} <= set(ctx)
    assert {"IPAddress", "RecipientEmail"} <= set(inst.personal_data)
    assert inst.model is not None and inst.model.is_file()
    # Every item names the sub-theme (facet) of its construct that it measures.
    assert all(i.sub_theme for i in inst.items), [i.id for i in inst.items if not i.sub_theme]


def test_default_marker_and_informant_knowledge_stay_out_of_the_model(default_instrument):
    """MARK is the marker (its own section, between predictors and criteria as Lindell & Whitney
    advise); KNOW is reported, not modelled; neither is in the model file, and the substantive
    constructs all are."""
    from instrument import read_model

    inst = default_instrument
    assert inst.marker_ids == ("MARK",)
    assert inst.construct("MARK").item_ids == ("MARK_1", "MARK_2", "MARK_3", "MARK_4")
    assert [c.id for c in inst.constructs if not c.in_model] == ["KNOW"]
    sections = [s.id for s in inst.sections]
    assert sections.index("relationship") < sections.index("marker") < sections.index("outcomes")
    assert inst.construct("MARK").section == "marker" and inst.construct("KNOW").section == "knowledge"
    model = read_model(inst.model)
    assert set(model.latents) == set(SUBSTANTIVE) | {"IM"}
    assert set(model.observed) - set(inst.model_columns) == {i for c in SUBSTANTIVE for i in inst.construct(c).item_ids}


def test_a_construct_outside_the_model_is_exempt_from_the_model_file_and_refused_in_it(tmp_path):
    from instrument.schema import model_problems

    doc = copy.deepcopy(BASE)
    doc["constructs"][1]["in_model"] = True
    (tmp_path / "m.lavaan").write_text("A =~ A_1 + A_2\n")
    doc["model"] = "m.lavaan"
    inst = parse_instrument(doc, source=tmp_path / "i.yaml")
    assert [p for p in model_problems(inst) if "'B_1' is not in" in p]  # B is expected in the model
    doc["constructs"][1]["in_model"] = False
    assert model_problems(parse_instrument(doc, source=tmp_path / "i.yaml")) == []
    (tmp_path / "m.lavaan").write_text("A =~ A_1 + A_2\nB =~ B_1 + B_2\nA ~ B\n")
    problems = model_problems(parse_instrument(doc, source=tmp_path / "i.yaml"))
    assert problems == ["model: 'B' says in_model: false but m.lavaan uses 'B', 'B_1', 'B_2'; remove it from the "
                        "model or the in_model key"]
    doc["constructs"][1]["in_model"] = "no"
    assert any(p.startswith("constructs[1].in_model: expected true or false") for p in problems_of(doc))


def _find_shared(name: str):
    """``name`` under ``shared/`` beside the checkout (``../shared``; a worktree one level deeper
    looks one more level up), or None."""
    from pathlib import Path

    for parent in Path(__file__).resolve().parents[2:4]:
        if (parent / "shared" / name).exists():
            return parent / "shared" / name
    return None


def _theme(text: str) -> str:
    """A sub-theme without its parenthesised examples, lower case: ``customer does not process
    information (e.g. does not read instructions)`` -> ``customer does not process information``."""
    import re

    return re.sub(r"\s+", " ", re.sub(r"\([^)]*\)", "", text)).strip().lower()


def _coverage_table() -> dict[str, list[str]]:
    """construct -> facets, from the table under "## Content coverage" of instrument/README.md."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "instrument" / "README.md").read_text(encoding="utf-8")
    part = readme.split("## Content coverage", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9]+)` \| ([^|]+) \|$", part, flags=re.M)
    return {cid: [f.strip() for f in facets.split(";")] for cid, facets in rows}


def test_every_sub_theme_and_facet_has_an_item(default_instrument):
    """Content coverage (issue 16): every facet of instrument/README.md's coverage table (the reasons'
    sub-themes of Jarvi et al., the facets the other definitions list) has at least one item whose
    ``sub_theme`` names it, every item's ``sub_theme`` is a facet of its own construct, and every
    construct has a row."""
    table = _coverage_table()
    inst = default_instrument
    assert sorted(table) == sorted(inst.construct_ids)
    for c in inst.constructs:
        facets = {_theme(f) for f in table[c.id]}
        assert len(facets) == len(table[c.id]), c.id
        named = {_theme(i.sub_theme) for i in c.items}
        assert named - facets == set(), (c.id, "items name a facet the table does not list")
        assert facets - named == set(), (c.id, "facets without an item")


def test_reason_sub_themes_are_those_of_the_theory():
    """The coverage table's reasons list exactly the sub-themes of ../shared/constructs.md (the
    "sub-themes" column of the reasons for value co-destruction), one facet per sub-theme."""
    import re

    theory = _find_shared("constructs.md")
    if theory is None:
        pytest.skip("../shared/constructs.md is not beside the checkout")
    rows = re.findall(r"^\| ([A-Z]{4}) \| [^|]+ \| [^|]+ \| ([^|]+) \|$", theory.read_text(encoding="utf-8"), flags=re.M)
    assert sorted(cid for cid, _ in rows) == sorted(REASONS)
    table = _coverage_table()
    for cid, themes in rows:
        # a row may leave out a repeated subject ("customer misuses the product; stores it incorrectly")
        theory_themes = [_theme(t) for t in themes.split(";")]
        facets = [_theme(f) for f in table[cid]]
        match = {t: [f for f in facets if f == t or f.endswith(" " + t)] for t in theory_themes}
        assert all(len(m) == 1 for m in match.values()), (cid, match)
        assert sorted(m[0] for m in match.values()) == sorted(facets), cid


@pytest.mark.parametrize(
    "change, path, message",
    [
        (lambda d: d["constructs"][1].update(id="A"), "constructs[1].id", "duplicate construct id 'A'"),
        (lambda d: d["constructs"][1]["items"].append({"id": "A_1"}), "constructs[1].items[2].id",
         "item 'A_1' is in two constructs, 'A' and 'B'"),
        (lambda d: d["constructs"][0]["items"].append({"id": "A_1"}), "constructs[0].items[2].id",
         "duplicate item id 'A_1' in construct 'A'"),
        (lambda d: d["constructs"][1].update(items=[]), "constructs[1].items", "construct 'B' has no items"),
        (lambda d: d["constructs"][1].pop("items"), "constructs[1].items", "construct 'B' has no items"),
        (lambda d: d["constructs"][0]["items"][0].update(reverse="yes"), "constructs[0].items[0].reverse",
         "expected true or false, got text 'yes'"),
        (lambda d: d["constructs"][0]["items"][0].update(reverse=1), "constructs[0].items[0].reverse",
         "expected true or false, got a number 1"),
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d["constructs"][0]["items"][1].update(revers=True), "constructs[0].items[1].revers", "unknown key"),
        (lambda d: d["scale"].update(min=7, max=1), "scale", "min (7) must be less than max (1)"),
        (lambda d: d["scale"].update(min=3, max=3), "scale", "min (3) must be less than max (3)"),
        (lambda d: d["scale"].update(min=1.5), "scale.min", "must be a whole number on a likert scale"),
        (lambda d: d["scale"].pop("max"), "scale.max", "is required for a likert scale"),
        (lambda d: d["scale"].update(type="ordinal"), "scale.type", "must be one of likert, continuous"),
        (lambda d: d["scale"].update(labels={9: "Way out"}), "scale.labels.9", "outside the scale 1..5"),
        (lambda d: d["constructs"][0].update(scale={"type": "likert", "min": 0, "max": 0}),
         "constructs[0].scale", "min (0) must be less than max (0)"),
        (lambda d: d["constructs"][0]["items"][0].update(id="A 1"), "constructs[0].items[0].id",
         "must start with a letter"),
        (lambda d: d["constructs"][0]["items"][0].update(id=12), "constructs[0].items[0].id", "expected an identifier"),
        (lambda d: d["attention_checks"][0].update(expected=9), "attention_checks[0].expected", "not an answer the scale allows"),
        (lambda d: d["attention_checks"][0].update(after="Z_9"), "attention_checks[0].after", "'Z_9' is not an item id"),
        (lambda d: d["context"][0].pop("values"), "context[0].values", "needs a non-empty list of allowed values"),
        (lambda d: d["context"][0].update(values=["GB", False]), "context[0].values[1]", "quote it"),
        (lambda d: d["context"][0].update(type="date"), "context[0].type", "must be one of categorical"),
        (lambda d: d["context"][0].update(id="A_1"), "", "column name 'A_1' is used twice"),
        (lambda d: d["constructs"][1].update(id="A_1"), "constructs", "construct id 'A_1' is also a column"),
        (lambda d: d["constructs"][0].update(section="s9"), "constructs[0].section", "unknown section 's9'"),
        (lambda d: d.pop("name"), "name", "is required"),
        (lambda d: d.pop("constructs"), "constructs", "is required"),
        (lambda d: d.update(constructs=[]), "constructs", "expected a non-empty list"),
        (lambda d: d.update(scale={"type": "continuous"}), "constructs[0].items[1].reverse",
         "needs a scale with both min and max"),
        (lambda d: d.update(model="nowhere.lavaan"), "model", "not found"),
        (lambda d: d.update(personal_data="IPAddress"), "personal_data", "expected a list"),
    ],
)
def test_schema_error_names_its_yaml_path(change, path, message):
    problems = problems_of(mutate(change))
    prefix = f"{path}: " if path else ""
    assert any(p.startswith(prefix) and message in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    def break_three_things(d):
        d["scale"].update(min=9)
        d["constructs"][0]["items"][0]["reverse"] = "no"
        d["constructs"][1]["items"] = []

    problems = problems_of(mutate(break_three_things))
    assert len(problems) == 3, problems
    assert [p.split(":")[0] for p in problems] == ["scale", "constructs[0].items[0].reverse", "constructs[1].items"]


def test_duplicate_yaml_key_is_caught_with_its_line(write_yaml):
    path = write_yaml(MINIMAL_LIKERT + "constructs: []\n")
    with pytest.raises(InstrumentError) as exc:
        load_instrument(path)
    assert exc.value.problems == ["line 9: key 'constructs' appears twice in one mapping"]


def test_malformed_yaml_gives_line_and_column(write_yaml):
    path = write_yaml("name: x\nscale: {type: likert, min: 1\nconstructs: []\n")
    with pytest.raises(InstrumentError) as exc:
        load_instrument(path)
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith("line 3, column 11: YAML syntax error")


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(InstrumentError, match="file not found"):
        load_instrument(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: Échelle\n".encode("latin-1"))
    with pytest.raises(InstrumentError, match="not UTF-8 text"):
        load_instrument(bad)


def test_construct_and_item_scale_override():
    doc = mutate(lambda d: d["constructs"][1].update(scale={"type": "continuous", "min": 0, "max": 100}))
    doc["constructs"][0]["items"][0]["scale"] = {"type": "likert", "min": 0, "max": 10}
    inst = parse_instrument(doc)
    assert inst.item("A_1").scale.points == tuple(range(0, 11))
    assert inst.item("A_2").scale.points == (1, 2, 3, 4, 5)
    assert inst.item("B_1").scale.type == "continuous" and inst.item("B_1").scale.max == 100


def test_reverse_keying_uses_the_scale_bounds():
    inst = parse_instrument(copy.deepcopy(BASE))
    scale = inst.item("A_2").scale
    assert [scale.reverse(x) for x in (1, 2, 3, 4, 5)] == [5, 4, 3, 2, 1]


def test_measurement_model_has_one_factor_per_construct():
    inst = parse_instrument(copy.deepcopy(BASE))
    assert inst.measurement_model() == "A =~ A_1 + A_2\nB =~ B_1 + B_2\n"


def test_pages_place_attention_checks_and_context():
    inst = parse_instrument(copy.deepcopy(BASE))
    pages = inst.pages()
    assert [q.id for q in pages[0].questions] == ["A_1", "A_2", "ATT1"]
    assert pages[0].title == "Part one"
    assert [q.id for q in pages[1].questions] == ["B_1", "B_2"]
    assert [q.id for q in pages[-1].questions] == ["group"]
    assert inst.columns == ("A_1", "A_2", "ATT1", "B_1", "B_2", "group")


def test_yaml_round_trip_of_default_instrument_is_stable(default_instrument):
    # The default file itself parses with plain safe_load too (no custom tags).
    raw = yaml.safe_load(default_instrument.source.read_text())
    assert parse_instrument(raw, source=default_instrument.source).item_ids == default_instrument.item_ids


def test_default_items_are_paraphrased_not_copied(default_instrument):
    """No run of six words from the seed papers appears in the instrument's texts."""
    import re
    from pathlib import Path

    seeds = _find_shared("seeds")
    papers = sorted(seeds.glob("*.txt")) if seeds is not None else []
    if not papers:
        pytest.skip("the seed papers are not beside the checkout (../shared/seeds)")

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower().replace("’", "'"))

    def grams(ws: list[str]) -> set[tuple[str, ...]]:
        return {tuple(ws[k:k + 6]) for k in range(len(ws) - 5)}

    seed_grams = set().union(*(grams(words(p.read_text(errors="replace"))) for p in papers))
    inst = default_instrument
    texts = [i.text for i in inst.items] + [c.definition for c in inst.constructs]
    texts += [c.text for c in inst.attention_checks] + [q.text for q in inst.context] + [inst.instructions]
    texts += [s.intro for s in inst.sections if s.intro] + [inst.description]
    assert len(texts) > 100
    copied = [t for t in texts if grams(words(t)) & seed_grams]
    assert copied == []
