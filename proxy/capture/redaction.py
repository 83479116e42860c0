"""Mask personal data (emails, phone numbers, card numbers, custom patterns) in captured text and JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])", re.ASCII)

# 13-19 digits, single spaces or dashes allowed between them; Luhn decides the rest.
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![ -]?\d|\w)", re.ASCII)

# Shared by every phone shape: not glued to a word, a sign, a decimal point or a path,
# and not followed by more digits, so fragments of longer numbers never match.
_BEFORE = r"(?<![\w+.\-/])"
_AFTER = r"(?![\w\-]|[ .\-/:]?\d)"
_PHONE = re.compile(
    _BEFORE
    + r"(?:"
    # international: +CC then groups separated by one space or dash, area code may be in ()
    + r"(?P<intl>\+\d{1,3}(?:[ -]?\(\d{1,4}\))?(?:[ -]?\d{1,5}){1,5})"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567
    + r"|(?:1[-. ])?(?:\(\d{3}\) ?\d{3}[-. ]\d{4}|\d{3}(?P<sep>[-.])\d{3}(?P=sep)\d{4})"
    # trunk-prefixed national: 020 7946 0958, 07700 900123, 02 9876 5432 (10-11 digits)
    + r"|(?P<trunk>0\d{1,4}(?:[ -]\d{3,8}){1,2})"
    + r")"
    + _AFTER,
    re.ASCII,
)
_DIGIT = re.compile(r"\d", re.ASCII)

_INTERNATIONAL_DIGITS = range(8, 16)  # E.164 allows at most 15 digits
_BARE_INTERNATIONAL_DIGITS = range(10, 16)  # "+12345678" is more often a signed number
_TRUNK_DIGITS = range(10, 12)

# Digit d doubled, with the digits of the product summed (the Luhn step).
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


class Redactor:
    """Replaces personal data in text with "[REDACTED:<kind>]" markers.

    Kinds are "email", "phone", "card" and "pattern" (the custom regexes, applied first).
    Card numbers are 13-19 digits, optionally split by single spaces or dashes, that pass
    the Luhn check. Phone numbers favour precision over recall; only these shapes count:

    - "+" then 8-15 digits (10-15 if written without separators), in groups separated by
      single spaces or dashes, with an optional parenthesised area code: +44 20 7946 0958;
    - North American 3-3-4 numbers written with dashes or dots, or with a parenthesised
      area code, optionally after "1-": (555) 123-4567, 555-123-4567, 1-555-123-4567;
    - national numbers with a leading 0 trunk prefix, 10-11 digits in 2-3 groups
      separated by spaces or dashes: 020 7946 0958, 07700 900123.

    Never phones: bare digit runs (IDs, timestamps), dates and times (2024-01-15,
    12:30:45), versions and addresses (1.2.3, 10.0.0.1), signed decimals (+1.2345678),
    numbers glued to letters or to longer digit sequences, and anything shorter.
    """

    def __init__(
        self,
        *,
        emails: bool = True,
        phones: bool = True,
        card_numbers: bool = True,
        patterns: Sequence[str] = (),
        replacement: str = "[REDACTED:{kind}]",
    ) -> None:
        self._emails = emails
        self._phones = phones
        self._cards = card_numbers
        self._patterns = [_compile_pattern(pattern) for pattern in patterns]
        # str.replace, not str.format: a replacement may contain other braces.
        self._phone_marker = replacement.replace("{kind}", "phone")
        self._card_marker = replacement.replace("{kind}", "card")
        # Escaped because re.sub reads backslashes in a replacement string as group references.
        self._email_marker = _escape_backslashes(replacement.replace("{kind}", "email"))
        self._pattern_marker = _escape_backslashes(replacement.replace("{kind}", "pattern"))

    @property
    def enabled(self) -> bool:
        return self._emails or self._phones or self._cards or bool(self._patterns)

    def redact_text(self, text: str) -> str:
        if not self.enabled or not text:
            return text
        for pattern in self._patterns:
            text = pattern.sub(self._pattern_marker, text)
        if self._emails and "@" in text:
            text = _EMAIL.sub(self._email_marker, text)
        if (self._cards or self._phones) and _DIGIT.search(text):
            if self._cards:
                text = _CARD.sub(self._card_or_original, text)
            if self._phones:
                text = _PHONE.sub(self._phone_or_original, text)
        return text

    def redact_json(self, value: object) -> object:
        """Return a copy with every string value redacted; keys and numbers are kept.

        A disabled redactor returns `value` itself rather than a copy.
        """
        if not self.enabled:
            return value
        return self._redact_value(value)

    def _redact_value(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {key: self._redact_value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact_value(item) for item in value]
        return value

    def _card_or_original(self, match: re.Match[str]) -> str:
        digits = match.group().replace(" ", "").replace("-", "")
        return self._card_marker if _passes_luhn(digits) else match.group()

    def _phone_or_original(self, match: re.Match[str]) -> str:
        number = match.group()
        digit_count = sum(character.isdigit() for character in number)
        if match.group("intl") is not None:
            allowed = _BARE_INTERNATIONAL_DIGITS if number[1:].isdigit() else _INTERNATIONAL_DIGITS
        elif match.group("trunk") is not None:
            allowed = _TRUNK_DIGITS
        else:
            return self._phone_marker
        return self._phone_marker if digit_count in allowed else number


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid redaction pattern {pattern!r}: {exc}") from exc


def _escape_backslashes(marker: str) -> str:
    return marker.replace("\\", "\\\\")


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, character in enumerate(reversed(digits)):
        digit = ord(character) - 48
        total += _LUHN_DOUBLED[digit] if position % 2 else digit
    return total % 10 == 0
