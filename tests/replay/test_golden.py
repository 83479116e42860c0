"""Golden sets from production: built from captured exchanges, versioned, moved between stores,
and run against a target that exits 0 when it gives the reference answers and 1 when it does not,
with results kept per version and target. (Issue 16, item 3.)"""

from __future__ import annotations

import orjson
import pytest

from tests.support.replay_support import ScriptedModel, StoreBuilder, chat, cli_run, last_user

CAPITALS = {"France": "The capital of France is Paris.", "Japan": "The capital of Japan is Tokyo.",
            "Kenya": "The capital of Kenya is Nairobi.", "Peru": "The capital of Peru is Lima.",
            "Norway": "The capital of Norway is Oslo."}


def question(country: str) -> str:
    return f"What is the capital of {country}?"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "captures.db"
    builder = StoreBuilder(path)
    for index, (country, answer) in enumerate(CAPITALS.items()):
        builder.exchange(f"x{index}", f"2026-11-20T10:0{index}:00+00:00", chat(question(country)), answer,
                         tags={"task": "geo"})
    builder.exchange("other", "2026-11-20T11:00:00+00:00", chat("Say hi"), "hi")
    return path


def answers_from(table: dict[str, str]):
    return lambda body: table.get(last_user(body).removeprefix("What is the capital of ").rstrip("?"), "I do not know.")


def golden(*args: str, expect: int = 0):
    return cli_run("golden", *args, expect=expect)


def show(db) -> dict:
    return orjson.loads(golden("show", "capitals", "--store", str(db), "--json").stdout)


def test_a_set_built_from_a_selection_holds_snapshots_with_the_primarys_answers(db):
    added = golden("add", "capitals", "--store", str(db), "--tag", "task=geo", "--description", "capital cities")
    assert "golden set capitals version 1: 5 items" in added.stdout
    shown = show(db)
    assert shown["set"]["version"] == 1 and shown["set"]["pass_criterion"] == "agreement>=0.8"
    assert {item["exchange_id"]: item["reference_text"] for item in shown["items"]} == {
        f"x{index}": answer for index, answer in enumerate(CAPITALS.values())}
    assert {item["reference_source"] for item in shown["items"]} == {"primary"}
    assert "capitals v1: 5 items" in golden("list", "--store", str(db)).stdout


def test_a_reviewers_reference_replaces_the_primarys_in_a_new_version(db):
    golden("add", "capitals", "--store", str(db), "--tag", "task=geo")
    golden("add", "capitals", "--store", str(db), "--id", "x0", "--reference-text", "Paris.", "--reviewer", "Ada")
    shown = show(db)
    assert shown["set"]["version"] == 2 and shown["set"]["items"] == 5
    (first,) = [item for item in shown["items"] if item["exchange_id"] == "x0"]
    assert (first["reference_text"], first["reference_source"]) == ("Paris.", "review:Ada")
    version_1 = orjson.loads(golden("show", "capitals", "--store", str(db), "--version", "1", "--json").stdout)
    assert [item["reference_text"] for item in version_1["items"] if item["exchange_id"] == "x0"] == [
        CAPITALS["France"]]
    golden("add", "capitals", "--store", str(db), "--tag", "task=geo", "--reference-text", "Paris.", expect=2)


@pytest.mark.e2e
def test_run_exits_0_for_a_target_that_matches_and_1_for_one_that_does_not_with_results_per_version(db):
    golden("add", "capitals", "--store", str(db), "--tag", "task=geo")
    wrong = {**CAPITALS, "Peru": "Cusco, the old Inca capital, high in the Andes.", "Norway": "Norway has no capital."}
    with ScriptedModel(answers_from(CAPITALS)) as right_model, ScriptedModel(answers_from(wrong)) as wrong_model:
        passed = golden("run", "capitals", "--store", str(db), "--target", "model:openai/good",
                        "--api-base", right_model.base_url, "-k", "2")
        assert "PASS 5/5 items passed" in passed.stdout
        assert len(right_model.requests) == 10
        failed = golden("run", "capitals", "--store", str(db), "--target", "model:openai/drifting",
                        "--api-base", wrong_model.base_url, "--json", expect=1)
        outcome = orjson.loads(failed.stdout)
        assert (outcome["items_passed"], outcome["items_judged"], outcome["passed"]) == (3, 5, 0)
        assert sorted(outcome["failing_items"]) == ["x3", "x4"]

        golden("remove", "capitals", "--store", str(db), "--id", "x3", "--id", "x4")
        golden("run", "capitals", "--store", str(db), "--target", "model:openai/drifting",
               "--api-base", wrong_model.base_url)
    runs = show(db)["runs"]
    assert [(run["version"], run["target_name"], run["passed"]) for run in runs] == [
        (2, "model:openai/drifting", 1), (1, "model:openai/drifting", 0), (1, "model:openai/good", 1)]


@pytest.mark.e2e
def test_a_run_whose_calls_fail_does_not_pass(db):
    golden("add", "capitals", "--store", str(db), "--tag", "task=geo")
    with ScriptedModel(answers_from(CAPITALS), status=500) as broken:
        result = golden("run", "capitals", "--store", str(db), "--target", "model:openai/broken",
                        "--api-base", broken.base_url, "--json", expect=1)
    outcome = orjson.loads(result.stdout)
    assert outcome["items_judged"] == 0 and outcome["passed"] == 0 and outcome["errors"]


@pytest.mark.e2e
def test_an_exported_set_runs_in_a_store_without_its_exchanges(db, tmp_path):
    golden("add", "capitals", "--store", str(db), "--tag", "task=geo", "--min-pass-rate", "0.8")
    exported = tmp_path / "capitals.json"
    golden("export", "capitals", "--store", str(db), "-o", str(exported))
    elsewhere = tmp_path / "elsewhere.db"
    StoreBuilder(elsewhere)  # an empty store
    assert "version 1: 5 items imported" in golden("import", str(exported), "--store", str(elsewhere)).stdout
    almost = {**CAPITALS, "Peru": "Cusco, the old Inca capital, high in the Andes."}
    with ScriptedModel(answers_from(almost)) as model:
        result = golden("run", "capitals", "--store", str(elsewhere), "--target", "model:openai/almost",
                        "--api-base", model.base_url)
    assert "PASS 4/5 items passed (80%; needs 80%)" in result.stdout


def test_unknown_sets_and_bad_files_are_clear_errors(db, tmp_path):
    assert "no golden set 'missing'" in golden("show", "missing", "--store", str(db), expect=1).stderr
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"format": "something else"}')
    assert "not a golden set export" in golden("import", str(bogus), "--store", str(db), expect=2).stderr
    assert "needs a selection" in golden("add", "capitals", "--store", str(db), expect=2).stderr
