"""Redactor.redacted_json_bytes: the JSON of a redacted value, without walking a value whose JSON
shows nothing to redact. Whatever the shortcut, the bytes are those of the full walk."""

import random

import orjson
import pytest

from shadowtap.core.redaction import Redactor, _nothing_to_redact

# Strings at the edges of what the shortcut lets through: digit groups glued to letters, escapes
# orjson writes just before a number, separators, "+" and "(" openers, non-ASCII letters.
TRICKY = [
    "plain text", "mail me at a.b@example.com now", "call (555) 123-4567 or +44 20 7946 0958",
    "card 4111 1111 1111 1111 end", "card\n4111111111111111", "x\u00014111111111111111", "é4111 1111 1111 1111",
    "tel:+44 20 7946 0958", "id_12345678901234", "abc-4111111111111111", "x/4111111111111111",
    "1.4111111111111111", "_5551234567", "chatcmpl-fake0123456789abcdef", "v1.2.3 10.0.0.1 2024-01-15 12:30:45",
    "020 7946 0958", "a\\4111111111111111", 'q"4111111111111111', "\t555-123-4567", "z\u001f4111111111111111",
    "+12345678901", "x+12345678901", "(555)123-4567", "tab\u000b5551234567", "naïve 07700 900123",
    "4111-1111-1111-1111", "AB1234567890123456CD", "Mon, 07 Dec 2026 21:40:00 GMT", "1796679515",
    "1-555-123-4567", "gpt-4o-mini-2024-07-18", "2026-12-07T21:40:00.123456+00:00", "+1 (555) 123-4567",
]


def seeded_strings(count: int, seed: int) -> list[str]:
    """Digit groups with separators and openers between letters, escapes and non-ASCII text."""
    rng = random.Random(seed)
    edges = ["", "a", "_", "Z", "/", ".", "-", "+", "(", " ", "\n", "\t", "\u0001", "é", "\\", '"', "n", "u"]
    separators = ["", "", "", " ", "-", ".", "(", ")", "+", "  "]
    strings = []
    for _ in range(count):
        parts = [rng.choice(edges)]
        for _ in range(rng.randint(1, 6)):
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 8))))
            parts.append(rng.choice(separators))
        parts.append(rng.choice(edges))
        strings.append("".join(parts))
    return strings


REDACTORS = {
    "default": Redactor(),
    "phones only": Redactor(emails=False, card_numbers=False),
    "cards only": Redactor(emails=False, phones=False),
    "emails only": Redactor(phones=False, card_numbers=False),
    "custom pattern": Redactor(patterns=[r"chatcmpl-\w+", r"\d{3}"], replacement="<{kind}>"),
    "off": Redactor(emails=False, phones=False, card_numbers=False),
}


@pytest.mark.parametrize("name", REDACTORS)
def test_redacted_json_bytes_equal_the_full_walk_when_strings_sit_at_every_edge(name):
    redactor = REDACTORS[name]
    for text in TRICKY + seeded_strings(3000, seed=17):
        value = {"id": "chatcmpl-1", "created": 1796679515, "text": text, "list": [text, {"k": text}], "n": 1.5}
        assert redactor.redacted_json_bytes(value) == orjson.dumps(redactor.redact_json(value)), text


def test_shortcut_is_refused_for_every_string_the_redactor_changes():
    redactor = Redactor()
    changed = [text for text in TRICKY + seeded_strings(20000, seed=5) if redactor.redact_text(text) != text]
    assert len(changed) > 300  # the corpus does reach the redactor's cases
    for text in changed:
        assert not _nothing_to_redact(orjson.dumps({"content": text})), text


def test_shortcut_is_taken_when_only_timestamps_ids_dates_and_versions_hold_digits():
    document = orjson.dumps({
        "id": "chatcmpl-fake0123456789abcdef", "created": 1796679515, "model": "gpt-4o-mini-2024-07-18",
        "headers": {"date": "Mon, 07 Dec 2026 21:40:00 GMT", "host": "127.0.0.1:9912", "content-length": "904"},
        "usage": {"prompt_tokens": 25, "completion_tokens": 110, "total_tokens": 135},
        "versions": ["1.2.3", "10.0.0.1", "2024-01-15"],
    })
    assert _nothing_to_redact(document)


@pytest.mark.parametrize("text", ["a@b.co", "+4420794609", "(555) 123-4567", "555.123.4567", "020 7946 0958",
                                  "4111111111111111", "1234567890123"])
def test_shortcut_is_refused_when_a_string_could_hold_an_email_a_phone_or_a_card(text):
    assert not _nothing_to_redact(orjson.dumps({"content": text}))
