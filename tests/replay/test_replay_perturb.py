"""Deterministic request perturbations and the sensitivity figure built from them."""

import copy
import re

from shadowtap.replay.perturb import perturbations, sensitivity

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Answer from the documents.\n<document id=\"a\">Alpha facts.</document>\n"
                                      "<document id=\"b\">Beta facts.</document>"},
        {"role": "user", "content": "Earlier question about something."},
        {"role": "assistant", "content": "Earlier answer."},
        {"role": "user", "content": "What does the “refund” policy say about order 12345 and get_weather "
                                    "for Paris when userId changes? Please explain the details carefully."},
    ],
    "shadowtap": {"contexts": ["first passage", "second passage", "third passage"]},
}


def by_name(request, contexts=None):
    return dict(perturbations(request, contexts))


def texts(request):
    return [m["content"] for m in request["messages"]]


def test_perturbations_are_deterministic_and_never_mutate_the_input():
    before = copy.deepcopy(REQUEST)
    first, second = perturbations(REQUEST), perturbations(copy.deepcopy(REQUEST))
    assert first == second
    assert REQUEST == before
    assert [name for name, _ in first] == ["whitespace", "casing", "punctuation", "context_order", "typos"]
    for _, perturbed in first:
        assert perturbed != REQUEST
        assert perturbed["messages"] is not REQUEST["messages"]


def test_whitespace_changes_only_white_space_in_user_messages():
    perturbed = by_name(REQUEST)["whitespace"]
    for old, new, message in zip(texts(REQUEST), texts(perturbed), REQUEST["messages"]):
        assert re.sub(r"\s+", "", old) == re.sub(r"\s+", "", new)
        if message["role"] != "user":
            assert old == new
    assert texts(perturbed) != texts(REQUEST)


def test_whitespace_collapses_runs_when_there_are_any():
    request = {"messages": [{"role": "user", "content": "too   many\n\n\nblanks"}]}
    assert by_name(request)["whitespace"]["messages"][0]["content"] == "too many\nblanks"


def test_casing_lowercases_only_the_last_user_message():
    perturbed = by_name(REQUEST)["casing"]
    assert texts(perturbed)[:3] == texts(REQUEST)[:3]
    assert texts(perturbed)[3] == texts(REQUEST)[3].lower() != texts(REQUEST)[3]


def test_punctuation_toggles_trailing_punctuation_and_normalises_quotes():
    perturbed = texts(by_name(REQUEST)["punctuation"])
    assert perturbed[:3] == texts(REQUEST)[:3]
    assert perturbed[3] == texts(REQUEST)[3].replace("“", '"').replace("”", '"')[:-1]
    added = by_name({"messages": [{"role": "user", "content": "no full stop"}]})["punctuation"]
    assert added["messages"][0]["content"] == "no full stop."


def test_context_order_reverses_shadowtap_contexts_and_tagged_blocks():
    perturbed = by_name(REQUEST)["context_order"]
    assert perturbed["shadowtap"]["contexts"] == ["third passage", "second passage", "first passage"]
    system = perturbed["messages"][0]["content"]
    assert system.index("Beta facts") < system.index("Alpha facts")
    assert sorted(system) == sorted(texts(REQUEST)[0])
    assert texts(perturbed)[1:] == texts(REQUEST)[1:]


def test_context_order_reverses_known_context_texts_found_verbatim_in_a_message():
    request = {"messages": [{"role": "user", "content": "Use these:\none passage\n---\nanother passage\nThanks"}]}
    perturbed = by_name(request, contexts=["one passage", "another passage"])["context_order"]
    assert perturbed["messages"][0]["content"] == "Use these:\nanother passage\n---\none passage\nThanks"


def test_context_order_is_omitted_when_there_is_nothing_to_reorder():
    request = {"messages": [{"role": "user", "content": "<context>only one</context> Question?"}],
               "shadowtap": {"contexts": ["single"]}}
    assert "context_order" not in by_name(request)


def test_typos_swap_adjacent_letters_in_plain_words_only():
    old, new = texts(REQUEST)[3], texts(by_name(REQUEST)["typos"])[3]
    old_words, new_words = old.split(" "), new.split(" ")
    assert len(old_words) == len(new_words)
    changed = [(a, b) for a, b in zip(old_words, new_words) if a != b]
    assert 1 <= len(changed) <= 3
    for a, b in changed:
        assert sorted(a) == sorted(b) and a[0] == b[0] and a.islower()
        assert sum(x != y for x, y in zip(a, b)) == 2
    for protected in ("12345", "get_weather", "Paris", "userId"):
        assert protected in new


def test_typos_are_omitted_when_every_word_is_a_number_or_identifier():
    request = {"messages": [{"role": "user", "content": "get_weather 12345 Paris userId HTTP"}]}
    assert "typos" not in by_name(request)


def test_perturbations_edit_text_parts_of_content_lists():
    request = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello There"},
                                                         {"type": "image_url", "image_url": {"url": "x"}}]}]}
    parts = by_name(request)["casing"]["messages"][0]["content"]
    assert parts[0]["text"] == "hello there" and parts[1] == request["messages"][0]["content"][1]


def test_sensitivity_is_zero_when_every_perturbed_outcome_equals_the_baseline():
    result = sensitivity({"whitespace": True, "casing": True, "typos": True}, baseline=True)
    assert result == {"perturbations": 3, "changed": 0, "sensitivity": 0.0,
                      "flags": {"whitespace": False, "casing": False, "typos": False}}


def test_sensitivity_counts_the_share_of_flipped_outcomes():
    result = sensitivity({"whitespace": True, "casing": False, "punctuation": True, "typos": False}, baseline=True)
    assert result["sensitivity"] == 0.5 and result["changed"] == 2
    assert result["flags"] == {"whitespace": False, "casing": True, "punctuation": False, "typos": True}


def test_sensitivity_is_none_when_no_perturbation_applied():
    assert sensitivity({}, baseline=False)["sensitivity"] is None


def test_sensitivity_is_zero_against_a_deterministic_target_that_ignores_the_perturbed_parts():
    def target(request):
        # Answers from the user's words with white space, case, punctuation and letter order inside
        # each word normalised, and never looks at the retrieved contexts.
        last = [m["content"] for m in request["messages"] if m["role"] == "user"][-1]
        words = re.sub(r"[^\w\s]", "", last.lower()).split()
        return " ".join("".join(sorted(word)) for word in words)

    request = {"messages": [{"role": "user", "content": "Please   summarise the “Refund” policy for customers?"}],
               "shadowtap": {"contexts": ["a", "b"]}}
    captured_answer = target(request)
    baseline = target(request) == captured_answer
    outcomes = {name: target(perturbed) == captured_answer for name, perturbed in perturbations(request)}
    assert set(outcomes) == {"whitespace", "casing", "punctuation", "context_order", "typos"}
    assert sensitivity(outcomes, baseline)["sensitivity"] == 0.0


def test_sensitivity_is_positive_against_a_target_that_reads_the_perturbed_parts():
    request = {"messages": [{"role": "user", "content": "Please summarise the Refund policy for customers?"}]}
    outcomes = {name: perturbed == request for name, perturbed in perturbations(request)}
    assert sensitivity(outcomes, baseline=True)["sensitivity"] == 1.0


# -- every replayable dialect is perturbed in its own shape ----------------------------------------

QUESTION = "What does the refund policy say about damaged orders? Please explain carefully."
DOCUMENTS = '<document id="a">Alpha facts.</document>\n<document id="b">Beta facts.</document>'
MESSAGES_REQUEST = {
    "model": "claude-sonnet-4", "max_tokens": 200, "system": f"Answer from the documents.\n{DOCUMENTS}",
    "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
}
RESPONSES_REQUEST = {"model": "gpt-4.1", "instructions": f"Answer from the documents.\n{DOCUMENTS}", "input": QUESTION}


def test_an_anthropic_request_has_its_system_contexts_reordered_and_its_last_user_block_lowered():
    found = by_name(MESSAGES_REQUEST)
    assert list(found) == ["whitespace", "casing", "punctuation", "context_order", "typos"]
    assert found["context_order"]["system"] == ('Answer from the documents.\n<document id="b">Beta facts.</document>\n'
                                                '<document id="a">Alpha facts.</document>')
    assert found["casing"]["messages"][0]["content"] == [{"type": "text", "text": QUESTION.lower()}]
    assert found["casing"]["system"] == MESSAGES_REQUEST["system"]        # only the user's words change case
    assert found["punctuation"]["messages"][0]["content"][0]["text"] == QUESTION.removesuffix(".")


def test_a_responses_request_with_string_input_is_perturbed_there_and_in_its_instructions():
    found = by_name(RESPONSES_REQUEST)
    assert found["casing"]["input"] == QUESTION.lower()
    assert found["context_order"]["instructions"].index("Beta") < found["context_order"]["instructions"].index("Alpha")
    assert found["typos"]["input"] != QUESTION and found["typos"]["instructions"] == RESPONSES_REQUEST["instructions"]


def test_a_responses_request_with_input_items_has_its_last_user_input_text_perturbed():
    request = {"model": "gpt-4.1", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "First question here."}]},
        {"type": "function_call_output", "call_id": "c1", "output": "{\"status\": \"shipped\"}"},
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
    ]}
    casing = by_name(request)["casing"]
    assert casing["input"][2]["content"][0]["text"] == QUESTION.lower()
    assert casing["input"][:2] == request["input"][:2]
