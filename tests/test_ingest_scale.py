"""The two CSV readers of pipeline.ingest agree: a file without any quote character goes through
pandas' C parser (issue 13: a million rows), any other through the csv module. Each text below
is read as it is (fast reader) and with one extra quoted column (csv module); the cells must be
the same once that column is dropped."""
import pandas as pd
import pytest

from pipeline.ingest import read_export

TEXTS = {
    "plain": "id,a,b\n1,2,3\n4,5,6\n",
    "crlf and spaces": "id , a ,b\r\n 1, 2 ,3\r\n4,5,  \r\n",
    "blank and empty rows": "id,a,b\n\n1,2,3\n,,\n   \n4,,6\n",
    "short row": "id,a,b\n1,2\n4,5,6\n",
    "semicolons": "id;a;b\n1;2,5;3\n4;5;6\n",
    "no final newline": "id,a,b\n1,2,3",
    "text cells": "id,a,b\nx y,=1+1,\t7\n",
}


def _quoted_twin(text: str, delimiter: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    out = []
    for k, line in enumerate(lines):
        if not line.strip(delimiter + " \t"):
            out.append(line)
            continue
        out.append(('"extra"' if k == 0 else '"q"') + delimiter + line)
    return "\n".join(out)


@pytest.mark.parametrize("name", list(TEXTS))
def test_fast_reader_equals_the_csv_module(tmp_path, name):
    text = TEXTS[name]
    delimiter = ";" if name == "semicolons" else ","
    fast, slow = tmp_path / "fast.csv", tmp_path / "slow.csv"
    fast.write_text(text, encoding="utf-8", newline="")
    slow.write_text(_quoted_twin(text, delimiter), encoding="utf-8", newline="")
    a = read_export(fast).cells
    b = read_export(slow).cells.drop(columns=["extra"])
    pd.testing.assert_frame_equal(a, b)
    assert a.shape[0] >= 1


def test_a_row_longer_than_the_header_is_still_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 1 has 3 cells but the header has 2 columns"):
        read_export(path)
