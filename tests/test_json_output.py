"""``--json`` documents: long lists are written one object a line, and stay the same strict JSON."""

from __future__ import annotations

import json
import math

from quark_cli.cli_output import LONG_LIST, json_document


def test_a_long_list_of_objects_is_one_object_a_line_and_the_same_document():
    document = {
        "run_dir": "runs/r",
        "stack_totals": {"total": 2, "FINISHED": 1},
        "jobs": [{"key": f"{i:03d}-r1", "error": 'a "quote" é', "age_seconds": 1.5} for i in range(LONG_LIST + 5)],
        "stacks": [{"stack": "000-r1", "status": "FINISHED"}],
    }
    text = json_document(document)
    assert json.loads(text) == document
    lines = text.splitlines()
    assert sum(line.startswith('    {"key":') for line in lines) == LONG_LIST + 5
    assert '  "stack_totals": {\n    "total": 2,' in text, "short values keep the indented layout"


def test_a_non_finite_number_is_null_in_long_and_short_documents():
    for count in (3, LONG_LIST + 5):
        document = {"jobs": [{"key": str(i), "queue_s": math.nan if i == 1 else 2.0} for i in range(count)]}
        parsed = json.loads(json_document(document))  # json.loads would accept NaN: look at the text too
        assert parsed["jobs"][1]["queue_s"] is None
        assert "NaN" not in json_document(document)


def test_text_that_reads_like_a_non_finite_number_stays_text():
    document = {"jobs": [{"key": str(i), "error": "result was NaN, Infinity"} for i in range(LONG_LIST + 1)]}
    assert json.loads(json_document(document)) == document


def test_long_lists_stay_ascii_and_exact_whatever_orjson_refuses():
    """Non-ASCII text is escaped (a terminal in another encoding gets valid JSON); an integer past
    64 bits and a key that is not text are written as the standard library writes them."""
    jobs = [{"key": str(i), "error": "plain"} for i in range(LONG_LIST + 3)]
    jobs[1]["error"] = "Lösung ✓"
    jobs[2]["big"] = 2**70
    jobs[3] = {1: "a number as its key"}
    text = json_document({"jobs": jobs})
    assert text.isascii()
    assert json.loads(text)["jobs"][1]["error"] == "Lösung ✓"
    assert json.loads(text)["jobs"][2]["big"] == 2**70
    assert json.loads(text)["jobs"][3] == {"1": "a number as its key"}
    assert '    {"key":"0","error":"plain"},' in text.splitlines()
