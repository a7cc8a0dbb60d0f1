"""Write the malformed-input corpus (run from the repository root: python tests/corpus/make_corpus.py).

Each file is one kind of broken (or merely awkward) survey export; expected.yaml says what
`gapscale clean` must do with it: exit status 2 and a one-line message, or the documented
repair (exit 0) and, where it matters, a note or a logged cell problem.
"""
from pathlib import Path

import openpyxl
import pandas as pd
import pyreadstat

HERE = Path(__file__).parent
HEADER = ["respondent_id", "relationship_type", "A_1", "A_2", "A_3", "ATT1", "B_1", "B_2", "B_3",
          "experience_years", "duration_s", "email"]
ROWS = [
    ["R1", "B2B", 4, 4, 2, 2, 3, 4, 3, 10, 600, "r1@example.org"],
    ["R2", "B2C", 5, 4, 1, 2, 4, 4, 5, 3, 540, "r2@example.org"],
    ["R3", "B2G", 2, 3, 4, 2, 2, 2, 1, 22, 700, "r3@example.org"],
    ["R4", "G2C", 3, 4, 2, 2, 3, 2, 4, 7, 650, "r4@example.org"],
    ["R5", "B2B", 4, 5, 2, 2, 5, 4, 4, 15, 580, "r5@example.org"],
    ["R6", "B2C", 1, 2, 5, 2, 1, 2, 2, 1, 610, "r6@example.org"],
]


def table(rows=ROWS, header=HEADER, sep=","):
    lines = [sep.join(header)] + [sep.join("" if v is None else str(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


def write(name, text, encoding="utf-8"):
    (HERE / name).write_bytes(text.encode(encoding) if isinstance(text, str) else text)


def replace(rows, r, col, value):
    rows = [list(x) for x in rows]
    rows[r][HEADER.index(col)] = value
    return rows


def drop(cols):
    keep = [k for k, c in enumerate(HEADER) if c not in cols]
    return [[r[k] for k in keep] for r in ROWS], [HEADER[k] for k in keep]


write("good.csv", table())
write("semicolon.csv", table(sep=";"))
write("tab_delimited.tsv", table(sep="\t"))
write("pipe_delimited.csv", table(sep="|"))
write("bom.csv", "\ufeff" + table())
latin = table(replace(ROWS, 0, "email", "café@example.org"))
write("latin1.csv", latin, "latin-1")
write("latin1_declared.csv", latin, "latin-1")
write("utf16.csv", table(), "utf-16")
write("header_only.csv", ",".join(HEADER) + "\n")
write("empty.csv", "")
write("blank_lines.csv", "\n\n  \n")
rows, header = drop(["A_2", "B_3"])
write("missing_item_columns.csv", table(rows, header))
rows, header = drop(["respondent_id"])
write("missing_id_column.csv", table(rows, header))
write("duplicate_column.csv", table([r + [r[2]] for r in ROWS], HEADER + ["A_1"]))
write("empty_header_cell.csv", table([r + ["x"] for r in ROWS], HEADER + [""]))
write("ragged_row.csv", table() + "R7,B2B,1,2,3,2,4,5,1,3,500,r7@example.org,extra,cells\n")
write("duplicate_ids.csv", table(replace(ROWS, 3, "respondent_id", "R1")))
write("text_in_numeric.csv", table(replace(replace(ROWS, 1, "A_2", "four"), 4, "B_1", "n/a")))
write("out_of_range.csv", table(replace(replace(ROWS, 2, "B_2", 77), 5, "A_1", 0)))
write("all_missing_item.csv", table([r[:7] + [None] + r[8:] for r in ROWS]))
write("constant_item.csv", table([r[:6] + [3] + r[7:] for r in ROWS]))
write("bad_context.csv", table(replace(replace(ROWS, 0, "relationship_type", "B2X"), 2, "experience_years", 99)))
write("bad_duration.csv", table(replace(replace(ROWS, 0, "duration_s", -5), 1, "duration_s", "ten")))
write("decimal_comma.csv", table(replace(ROWS, 0, "duration_s", "600,5"), sep=";"))
write("empty_id.csv", table(replace(ROWS, 2, "respondent_id", None)))
write("already_recoded.csv", table([r + [1] for r in ROWS], HEADER + ["reverse_recoded"]))
write("not_a_table.json", '{"a": 1}\n')
write("not_excel.xlsx", "respondent_id,A_1\nR1,3\n")
write("not_spss.sav", b"\x00\x01not an SPSS file")

# Qualtrics exports: three header rows, metadata and personal-data columns, numbers or choice text.
labels = {1: "Strongly disagree", 2: "Disagree", 3: "Neutral", 4: "Agree", 5: "Strongly agree"}
meta = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished",
        "RecordedDate", "ResponseId", "RecipientLastName", "RecipientFirstName", "RecipientEmail",
        "ExternalReference", "LocationLatitude", "LocationLongitude", "DistributionChannel", "UserLanguage"]
questions = ["relationship_type", "A_1", "A_2", "A_3", "ATT1", "B_1", "B_2", "B_3", "experience_years"]


def qualtrics(choice_text: bool) -> str:
    header = meta + questions
    text_row = meta + [f"Question text of {q}" for q in questions]
    import_row = [f'{{"ImportId":"{m.lower()}"}}' for m in meta] + [f'{{"ImportId":"QID{k}"}}' for k in range(1, 10)]
    body = []
    for k, r in enumerate(ROWS, start=1):
        m = ["2026-11-01 10:00:00", "2026-11-01 10:10:00", "0", f"198.51.100.{k}", "100", str(r[10]), "1",
             "2026-11-01 10:10:01", f"R_{k:04d}", f"Last{k}", f"First{k}", f"person{k}@example.org",
             f"EXT{k}", "60.17", "24.94", "anonymous", "EN"]
        answers = [r[1]] + [(labels[v] if choice_text else v) for v in r[2:9]] + [r[9]]
        if not choice_text:
            answers[0] = str(["B2B", "B2C", "B2G", "G2C"].index(r[1]) + 1)
        body.append(m + [str(a) for a in answers])
    import csv, io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows([header, text_row, import_row] + body)
    return buf.getvalue()


write("qualtrics_numeric.csv", qualtrics(choice_text=False))
write("qualtrics_choice_text.csv", qualtrics(choice_text=True))

# SPSS with value labels, and Excel.
frame = pd.DataFrame(ROWS, columns=HEADER)
sav = frame.copy()
sav["relationship_type"] = sav["relationship_type"].map({"B2B": "B2B", "B2C": "B2C", "B2G": "B2G", "G2C": "G2C"})
pyreadstat.write_sav(sav, str(HERE / "spss_value_labels.sav"),
                     variable_value_labels={c: labels for c in ["A_1", "A_2", "A_3", "B_1", "B_2", "B_3", "ATT1"]})
book = openpyxl.Workbook()
ws = book.active
ws.title = "responses"
ws.append(HEADER)
for r in ROWS:
    ws.append(r)
book.save(HERE / "excel.xlsx")


# --------------------------------------------------------------------------- hostile data inputs
# (issue 12): cells that slip through or crash, ids and columns that carry personal data.
import csv as _csv
import io as _io


def csv_text(rows, header=HEADER, sep=","):
    buf = _io.StringIO()
    w = _csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else v for v in r] for r in rows])
    return buf.getvalue()


def column(rows, col, values):
    rows = [list(x) for x in rows]
    for r, v in zip(rows, values):
        r[HEADER.index(col)] = v
    return rows


write("long_cell_personal.csv", csv_text(replace(ROWS, 2, "email", "x" * 200_000)))
write("long_cell_item.csv", csv_text(replace(ROWS, 4, "A_2", "4" * 140_000)))
write("unclosed_quote.csv", table() + 'R7,B2B,1,2,3,2,4,5,1,3,500,"r7@example.org\n')
write("decimal_comma_items.csv", table(replace(replace(ROWS, 0, "A_1", "4,0"), 3, "B_2", "2,0"), sep=";"))
write("arabic_digits.csv", table(replace(replace(ROWS, 1, "A_1", "\u0665"), 2, "experience_years", "\u0662\u0662")))
write("fullwidth_digits.csv", table(replace(ROWS, 5, "B_3", "\uff12")))
write("inf_values.csv", table(replace(replace(replace(ROWS, 0, "A_1", "inf"), 1, "B_1", "-inf"), 2, "A_2", "1e999")))
write("nan_text.csv", table(replace(replace(ROWS, 3, "A_3", "nan"), 4, "experience_years", "NaN")))
write("inf_duration.csv", table(replace(replace(ROWS, 0, "duration_s", "inf"), 1, "duration_s", "Infinity")))
write("thousands_separator.csv", csv_text(replace(ROWS, 2, "duration_s", "1,234")))
write("zero_width.csv", table(replace(ROWS, 0, "A_1", "3\u200b")))
write("huge_number.csv", table(replace(ROWS, 0, "experience_years", "1e308")))
write("id_is_item.csv", table())
write("constant_id.csv", table(column(ROWS, "respondent_id", ["R1"] * 6)))
write("email_ids.csv", table(column(ROWS, "respondent_id", [f"person{k}.secret@example.org" for k in range(1, 7)])))
write("email_ids_keep.csv", table(column(ROWS, "respondent_id", [f"person{k}.secret@example.org" for k in range(1, 7)])))
write("phone_ids_keep.csv", table(column(ROWS, "respondent_id", [f"+358 40 123 45{k:02d}" for k in range(1, 7)])))
write("formula_cells.csv", table(column(replace(ROWS, 0, "A_1", "=1+1"), "respondent_id",
                                        ["=HYPERLINK(1)", "+R2", "-R3", "@R4", "R5", "R6"])))
write("formula_ids_keep.csv", table(column(ROWS, "respondent_id", ["=HYPERLINK(1)", "+R2", "-R3", "@R4", "R5", "R6"])))
write("no_duration.csv", table([[v for c, v in zip(HEADER, r) if c != "duration_s"] for r in ROWS],
                               [h for h in HEADER if h != "duration_s"]))
write("integer_gaps.csv", table(column(ROWS, "experience_years", ["10", None, "2.0", "7", None, "1"])))
extra = HEADER + ["ip_address", "city", "phone"]
write("unknown_columns.csv", table([r + [f"203.0.113.{k}", f"TOKCITY{k}", f"TOKPHONE{k}"] for k, r in enumerate(ROWS, 1)],
                                   extra))
write("mac_line_endings.csv", table().replace("\n", "\r"))

# SPSS user-missing codes: 98/99 declared missing on items, a code on a string context column.
spss = frame.copy()
spss.loc[1, "A_1"] = 99
spss.loc[4, "B_2"] = 98
spss.loc[2, "relationship_type"] = "NA"
pyreadstat.write_sav(spss, str(HERE / "spss_user_missing.sav"),
                     missing_ranges={c: [98, 99] for c in ["A_1", "A_2", "A_3", "B_1", "B_2", "B_3", "ATT1"]}
                     | {"relationship_type": ["NA"]})
spss = frame.copy()
spss.loc[0, "experience_years"] = 95
pyreadstat.write_sav(spss, str(HERE / "spss_missing_range.sav"),
                     missing_ranges={"experience_years": [{"lo": 90, "hi": 99}]})

# A Qualtrics export whose instrument names Qualtrics' own columns, with a free-text question.
def qualtrics_text() -> str:
    text = qualtrics(choice_text=False).splitlines()
    rows = list(_csv.reader(text))
    rows[0].append("comments")
    rows[1].append("Anything else?")
    rows[2].append('{"ImportId":"QID10_TEXT"}')
    for k, r in enumerate(rows[3:], start=1):
        r.append(f"call me at TOKFREE{k} or mail tokfree{k}@example.org")
    rows[3][meta.index("Duration (in seconds)")] = "60"  # a speeder: 60 s against a median of ~600 s
    buf = _io.StringIO()
    _csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


write("qualtrics_duration_declared.csv", qualtrics_text())

# Instruments for the cases above: Qualtrics' own column names, free text that is not personal.
base = (HERE / "instrument.yaml").read_text()
write("instrument_qualtrics.yaml", base.replace("# Small instrument for the malformed-input corpus.",
                                                "# The corpus instrument naming Qualtrics' own columns; a free-text question.")
      .replace("id_column: respondent_id", "id_column: ResponseId")
      .replace("duration_column: duration_s", 'duration_column: "Duration (in seconds)"')
      .replace("personal_data: [email]", "personal_data: []")
      + "  - {id: comments, type: text}\n")
write("instrument_public_text.yaml", base.replace("# Small instrument for the malformed-input corpus.",
                                                  "# The corpus instrument with a free-text question declared not personal.")
      + "  - {id: remark, type: text, personal: false}\n")
write("public_text.csv", table([r + [t] for r, t in zip(ROWS, ["fine", "=cmd|' /C calc'!A0", "-looks negative", "+1",
                                                                "-2", None])], HEADER + ["remark"]))

# Column names that are themselves personal data or absurdly long: named in the notes only cut
# short or withheld.
write("personal_column_names.csv", table([r + ["1", "2"] for r in ROWS],
                                         HEADER + ["secret.person@example.org", "N" * 5000]))

# A panel export identified by the respondents' e-mail addresses (Qualtrics' RecipientEmail).
write("qualtrics_email_id.csv", qualtrics(choice_text=False))
