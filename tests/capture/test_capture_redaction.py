"""Redactor: masking emails, phone numbers, card numbers and custom patterns in captures."""

import pytest

from shadowtap.core.redaction import Redactor


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def test_email_is_redacted_when_text_contains_one(redactor):
    text = "Write to jane.doe+billing@mail.example.co.uk, not to me."
    assert redactor.redact_text(text) == "Write to [REDACTED:email], not to me."


@pytest.mark.parametrize("text", ["user@localhost", "@handle", "a@b", "price: 3@5 each", "x@y.1"])
def test_email_is_kept_when_address_has_no_dotted_domain(redactor, text):
    assert redactor.redact_text(text) == text


@pytest.mark.parametrize(
    "card",
    ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005", "5555555555554444",
     "6011 0009 9013 9424", "4222222222222"],
)
def test_card_number_is_redacted_when_it_passes_luhn(redactor, card):
    assert redactor.redact_text(f"card: {card}, exp 12/27") == "card: [REDACTED:card], exp 12/27"


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "order 4111111111111111111111",  # too many digits: part of something longer
        "ref 411111111111",  # 12 digits
        "id_4111111111111111",  # glued to an identifier
        "4111  1111  1111  1111",  # double spaces are not a card layout
    ],
)
def test_digits_are_kept_when_they_are_not_a_card_number(redactor, text):
    assert redactor.redact_text(text) == text


@pytest.mark.parametrize(
    "phone",
    [
        "(555) 123-4567",
        "(555)123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-555-123-4567",
        "+1 (555) 123-4567",
        "+1-555-123-4567",
        "+44 20 7946 0958",
        "+33 1 42 68 53 00",
        "+49 30 901820",
        "+14155552671",
        "+86 138 0013 8000",
        "020 7946 0958",
        "07700 900123",
    ],
)
def test_phone_number_is_redacted_when_it_has_a_phone_shape(redactor, phone):
    assert redactor.redact_text(f"Call {phone}.") == "Call [REDACTED:phone]."


@pytest.mark.parametrize(
    "text",
    [
        "Due 2024-01-15 at 12:30:45",
        "2024-01-15T12:30:45+05:30",
        "2024/01/15",
        "version 1.2.3 and 10.15.7",
        "host 192.168.100.200 port 8080",
        "took 1234 ms, 42 tokens",
        "timestamp 1700000000",
        "id 5551234567",
        "n=123456789012345",
        "delta +1.2345678",
        "signed +12345678",
        "sizes 256 512 1024 2048",
        "555 123 4567",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "sha 3f786850e387550fdab836ed7e6dc881de23001b",
        "ISBN 978-3-16-148410-0",
        "SSN-like 123-45-6789",
        "call 555-123-45678",
        "ticket 0123 456",
        "range 100-200-3000-4000",
    ],
)
def test_text_is_kept_when_numbers_are_not_phone_shaped(redactor, text):
    assert redactor.redact_text(text) == text


@pytest.mark.parametrize(("text", "expected"), [("tel:+1-555-123-4567", "tel:[REDACTED:phone]"),
                                               ("Phone:555-123-4567", "Phone:[REDACTED:phone]")])
def test_phone_number_is_redacted_when_glued_to_a_label_colon(redactor, text, expected):
    assert redactor.redact_text(text) == expected


def test_every_kind_is_redacted_when_one_text_mixes_them(redactor):
    text = "jo@example.com / +44 20 7946 0958 / 4111 1111 1111 1111"
    assert redactor.redact_text(text) == "[REDACTED:email] / [REDACTED:phone] / [REDACTED:card]"


def test_custom_pattern_is_redacted_when_configured():
    redactor = Redactor(patterns=[r"sk-[A-Za-z0-9]{20,}", r"EMP\d{6}"])
    text = "key sk-abcdefghijklmnopqrstuvwx for EMP123456"
    assert redactor.redact_text(text) == "key [REDACTED:pattern] for [REDACTED:pattern]"


def test_value_error_names_the_pattern_when_a_custom_pattern_is_invalid():
    with pytest.raises(ValueError, match=r"invalid redaction pattern '\(unclosed'"):
        Redactor(patterns=["ok\\d+", "(unclosed"])


def test_replacement_is_inserted_literally_when_it_holds_braces_or_backslashes():
    redactor = Redactor(patterns=["secret"], replacement=r"<{kind}:{n}\1\g<0>>")
    assert redactor.redact_text("a secret, b@example.com") == r"a <pattern:{n}\1\g<0>>, <email:{n}\1\g<0>>"


def test_only_enabled_kinds_are_redacted_when_some_are_switched_off():
    redactor = Redactor(emails=False, card_numbers=False)
    text = "a@example.com 4111111111111111 555-123-4567"
    assert redactor.redact_text(text) == "a@example.com 4111111111111111 [REDACTED:phone]"


def test_json_strings_are_redacted_and_other_values_kept_when_redacting_a_structure(redactor):
    original = {
        "messages": [{"role": "user", "content": "mail a@example.com"}],
        "a@example.com": 4111111111111111,
        "temperature": 0.2,
        "stream": True,
        "stop": None,
        "pair": ("555-123-4567", 3),
    }

    redacted = redactor.redact_json(original)

    assert redacted == {
        "messages": [{"role": "user", "content": "mail [REDACTED:email]"}],
        "a@example.com": 4111111111111111,
        "temperature": 0.2,
        "stream": True,
        "stop": None,
        "pair": ["[REDACTED:phone]", 3],
    }
    assert original["messages"][0]["content"] == "mail a@example.com"


def test_inputs_are_returned_as_is_when_every_kind_is_disabled():
    redactor = Redactor(emails=False, phones=False, card_numbers=False)
    payload = {"content": "a@example.com 4111111111111111"}

    assert redactor.enabled is False
    assert redactor.redact_json(payload) is payload
    assert redactor.redact_text(payload["content"]) == payload["content"]


@pytest.mark.parametrize(
    ("settings", "enabled"),
    [({}, True), ({"emails": False, "phones": False, "card_numbers": False}, False),
     ({"emails": False, "phones": False, "card_numbers": False, "patterns": ["x"]}, True)],
)
def test_enabled_reflects_settings_when_constructed(settings, enabled):
    assert Redactor(**settings).enabled is enabled


def test_non_ascii_digits_are_left_alone_when_text_uses_other_scripts(redactor):
    text = "رقم ٤١١١١١١١١١١١١١١١ and ４１１１１１１１１１１１１１１１"
    assert redactor.redact_text(text) == text
