"""The small A -> B -> C study several test modules build a pipeline from: three 4-item
constructs (A_4 reverse-keyed), one attention check, a two-group context question, the model with
its indirect effect, and the simulation's population and defects. Each module adds what it tests
(a name, personal-data columns, free text, stage settings)."""

HEAD = """\
scale: {type: likert, min: 1, max: 7, labels: {1: Strongly disagree, 7: Strongly agree}}
id_column: respondent_id
duration_column: duration_s
"""
ATTENTION = """\
attention_checks:
  - {id: ATT1, text: "Select 2", expected: 2, after: A_2}
"""
GROUP = """\
  - {id: group, text: "Group", type: categorical, values: [g1, g2], position: before}
"""
CONSTRUCTS = """\
constructs:
  - id: A
    label: Construct A
    items: [{id: A_1}, {id: A_2}, {id: A_3}, {id: A_4, reverse: true}]
  - id: B
    label: Construct B
    items: [{id: B_1}, {id: B_2}, {id: B_3}, {id: B_4}]
  - id: C
    label: Construct C
    items: [{id: C_1}, {id: C_2}, {id: C_3}, {id: C_4}]
"""
MODEL = """\
A =~ A_1 + A_2 + A_3 + A_4
B =~ B_1 + B_2 + B_3 + B_4
C =~ C_1 + C_2 + C_3 + C_4
B ~ a*A
C ~ b*B
ab := a*b
"""


def simulate(n: int) -> dict:
    """params.yaml ``simulate:`` for ``n`` respondents: B ~ .4 A, C ~ .5 B, two equal groups, the
    usual careless-responding defects and 1% missing cells."""
    return {"n": n, "structural": {"B": {"A": 0.4}, "C": {"B": 0.5}}, "context": {"group": {"g1": 0.5, "g2": 0.5}},
            "defects": {"straightliner": 0.03, "random_responder": 0.02, "speeder": 0.02, "inattentive": 0.03,
                        "duplicate": 0.01, "missing_cell": 0.01, "typo_cell": 0.002}}
