"""`shadowtap feedback import FILE`: CSV and JSONL rows land as the API would store them; bad
rows are reported by line number with the reason and skipped; exit 0 all good, 1 some bad, 2
a file or store that cannot be used. `shadowtap feedback list` shows what was recorded."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from tests.support.reference import levenshtein

ANSWERS = {"ex_a": "Invoices are issued on the first day of each month.",
           "ex_b": "Deleted projects are recoverable for 14 days.",
           "ex_c": "Support is available around the clock."}


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "captures.db"
    store = CaptureStore.open(path)
    store.insert_exchanges([{"id": exchange_id, "started_at": f"2026-11-23T10:0{i}:00+00:00", "method": "POST",
                             "path": "/v1/chat/completions", "endpoint": "chat.completions", "response_text": text}
                            for i, (exchange_id, text) in enumerate(ANSWERS.items())])
    store.close()
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


def stored(store_path) -> dict[str, dict]:
    store = CaptureStore.open(store_path)
    try:
        return {row["id"]: row for row in store.db.query("select * from feedback")}
    finally:
        store.close()


def bad_lines(stderr: str, name: str) -> dict[int, str]:
    """{line number: reason} from the "FILE:LINE: reason" lines on stderr."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith(name + ":"):
            number, reason = line[len(name) + 1:].split(": ", 1)
            found[int(number)] = reason
    return found


def test_a_csv_with_bad_rows_stores_the_good_ones_and_reports_each_bad_line(tmp_path, store_path):
    path = tmp_path / "reviews.csv"
    path.write_text(
        "feedback_id,exchange_id,outcome,edit_minutes,reviewer,label,comment,at\n"          # 1
        "r1,ex_a,accepted,,ana,billing,,2026-11-23T10:00:00Z\n"                             # 2
        "r2,ex_a,great,,ana,,,\n"                                                           # 3
        "r3,ex_b,edited,five,ben,,,\n"                                                      # 4
        "r4,ex_nowhere,accepted,,ben,,,\n"                                                  # 5
        '"r5",ex_b,edited,4.5,ben,retention,"two\nlines, mail ben@example.com",\n'           # 6-7
        "\n"                                                                                # 8
        "r1,ex_a,rejected,,ana,billing,,2026-11-23T10:00:00Z\n"                             # 9
        "r6,ex_c,policy_violation,,,,,\n"                                                   # 10
        "r7,,accepted,,,,,\n")                                                              # 11

    result = run("feedback", "import", str(path), "--store", str(store_path))

    assert result.exit_code == 1, result.output
    bad = bad_lines(result.stderr, str(path))
    assert sorted(bad) == [3, 4, 5, 9, 11]
    assert "outcome = 'great'" in bad[3] and "policy_violation" in bad[3]
    assert bad[4] == "bad number: edit_minutes = 'five'"
    assert "no captured exchange with id 'ex_nowhere'" in bad[5]
    assert "'r1' was already used for different content" in bad[9]
    assert "exchange_id is missing" in bad[11]
    assert "8 rows, 3 stored, 0 already there, 5 bad" in result.stdout
    rows = stored(store_path)
    assert sorted(rows) == ["r1", "r5", "r6"]
    assert (rows["r1"]["exchange_id"], rows["r1"]["outcome"], rows["r1"]["reviewer"], rows["r1"]["label"],
            rows["r1"]["at"], rows["r1"]["source"]) == ("ex_a", "accepted", "ana", "billing",
                                                      "2026-11-23T10:00:00.000000+00:00", "import")
    assert rows["r1"]["edit_minutes"] is None and rows["r1"]["comment"] is None
    assert rows["r5"]["edit_minutes"] == 4.5 and rows["r5"]["comment"] == "two\nlines, mail [REDACTED:email]"
    assert rows["r6"]["outcome"] == "policy_violation" and rows["r6"]["reviewer"] is None


def test_a_jsonl_file_with_bad_rows_stores_the_good_ones_with_edit_distances(tmp_path, store_path):
    edited = "Invoices are issued on the 1st of each month, in arrears."
    lines = [
        orjson.dumps({"exchange_id": "ex_a", "outcome": "edited", "edited_text": edited, "reviewer": "ana"}),  # 1
        b'{"exchange_id": "ex_b", "outcome": ',                                                     # 2
        b"",                                                                                        # 3
        b'["ex_b", "accepted"]',                                                                    # 4
        orjson.dumps({"exchange_id": "ex_b", "outcome": "accepted", "stars": 5}),                   # 5
        orjson.dumps({"outcome": "accepted"}),                                                      # 6
        orjson.dumps({"exchange_id": "ex_c", "outcome": "escalated", "edit_minutes": 12}),          # 7
        orjson.dumps({"exchange_id": "ex_b", "outcome": "edited", "edit_minutes": -3}),             # 8
    ]
    path = tmp_path / "reviews.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = run("feedback", "import", str(path), "--store", str(store_path))

    assert result.exit_code == 1, result.output
    bad = bad_lines(result.stderr, str(path))
    assert sorted(bad) == [2, 4, 5, 6, 8]
    assert bad[2].startswith("bad JSON") and bad[4].startswith("bad JSON")
    assert "unknown field 'stars'" in bad[5]
    assert "exchange_id is missing" in bad[6]
    assert "edit_minutes = -3" in bad[8]
    rows = sorted(stored(store_path).values(), key=lambda row: row["exchange_id"])
    assert [(row["exchange_id"], row["outcome"]) for row in rows] == [("ex_a", "edited"), ("ex_c", "escalated")]
    distance = levenshtein(ANSWERS["ex_a"], edited)
    assert rows[0]["edit_distance"] == distance
    assert rows[0]["edit_ratio"] == pytest.approx(distance / max(len(ANSWERS["ex_a"]), len(edited)))
    assert rows[1]["edit_minutes"] == 12.0 and rows[1]["edit_distance"] is None


def test_importing_a_good_file_twice_exits_0_and_the_second_time_stores_nothing_new(tmp_path, store_path):
    path = tmp_path / "export.txt"  # no telling extension: the content says JSONL
    path.write_text('{"exchange_id": "ex_a", "outcome": "accepted"}\n{"exchange_id": "ex_b", "outcome": "rejected"}\n')

    first = run("feedback", "import", str(path), "--store", str(store_path))
    second = run("feedback", "import", str(path), "--store", str(store_path))

    assert first.exit_code == 0 and "2 rows, 2 stored, 0 already there, 0 bad" in first.stdout
    assert second.exit_code == 0 and "2 rows, 0 stored, 2 already there, 0 bad" in second.stdout
    assert len(stored(store_path)) == 2


def test_a_big_file_is_imported_across_many_transactions(tmp_path, store_path):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for number in range(6000):
            out.write(orjson.dumps({"feedback_id": f"bulk-{number}", "exchange_id": "ex_c", "outcome": "accepted",
                                    "comment": "c" * 150}) + b"\n")
    assert path.stat().st_size > 1 << 20

    result = run("feedback", "import", str(path), "--store", str(store_path))

    assert result.exit_code == 0, result.output
    assert "6000 rows, 6000 stored" in result.stdout
    assert len(stored(store_path)) == 6000


@pytest.mark.parametrize("content, words", [
    ("exchange_id,outcome,stars\nex_a,accepted,5\n", "unknown column 'stars'"),
    ("exchange_id,reviewer\nex_a,ana\n", "no 'outcome' column"),
    ("exchange_id,outcome,outcome\nex_a,accepted,accepted\n", "appears twice"),
])
def test_a_csv_whose_header_cannot_work_is_a_usage_error(tmp_path, store_path, content, words):
    path = tmp_path / "reviews.csv"
    path.write_text(content)
    result = run("feedback", "import", str(path), "--store", str(store_path))
    assert result.exit_code == 2 and words in result.stderr
    assert stored(store_path) == {}


def test_a_missing_file_a_non_utf8_csv_or_a_missing_store_is_a_usage_error(tmp_path, store_path):
    missing = run("feedback", "import", str(tmp_path / "nope.csv"), "--store", str(store_path))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("exchange_id,outcome,comment\nex_a,accepted,caf\xe9\n".encode("latin-1"))
    not_utf8 = run("feedback", "import", str(latin), "--store", str(store_path))
    no_store = run("feedback", "import", str(latin), "--store", str(tmp_path / "none.db"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    assert not_utf8.exit_code == 2 and "not UTF-8" in not_utf8.stderr
    assert no_store.exit_code == 2 and "no capture store" in no_store.stderr
    assert not (tmp_path / "none.db").exists()


def test_feedback_list_shows_the_rows_of_one_exchange_as_json(tmp_path, store_path):
    path = tmp_path / "reviews.csv"
    path.write_text("exchange_id,outcome,reviewer\nex_a,accepted,ana\nex_b,rejected,ben\n")
    run("feedback", "import", str(path), "--store", str(store_path))

    listed = run("feedback", "list", "--store", str(store_path), "--exchange", "ex_b", "--json")
    table = run("feedback", "list", "--store", str(store_path))

    assert listed.exit_code == 0
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(row["exchange_id"], row["outcome"], row["reviewer"]) for row in rows] == [("ex_b", "rejected", "ben")]
    assert table.exit_code == 0 and "ex_a" in table.stdout and "rejected" in table.stdout
