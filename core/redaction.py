"""Mask personal data (emails, phone numbers, card numbers, custom patterns) in captured text and JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

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

# What cards and phone numbers are made of: digits and the separators " +().-". See `_nothing_to_redact`.
_DIGITS = b"0123456789"
_SEPARATORS = b" +().-"
# Every byte of such a run becomes "0", every other byte "x": runs are then found by bytes.find.
_RUN_MARKS = bytes(0x30 if byte in _DIGITS + _SEPARATORS else 0x78 for byte in range(256))
_EIGHT_RUN_MARKS = b"0" * 8

_INTERNATIONAL_DIGITS = range(8, 16)  # E.164 allows at most 15 digits
_BARE_INTERNATIONAL_DIGITS = range(10, 16)  # "+12345678" is more often a signed number
_TRUNK_DIGITS = range(10, 12)

# Digit d doubled, with the digits of the product summed (the Luhn step).
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


class _NearEndsPattern:
    """`pattern.sub(replace, text)`, with the same result, in time linear in the text.

    Card and phone matches lie inside runs of a few characters (digits and separators) and are
    at most `reach` characters long. Inside a run, a match can only end at the run's end or where
    `breaks` matches (two separators in a row, say). Runs are found by one possessive scan; inside
    a long run the pattern is tried only in blocks that hold a break (and the `reach` before
    them). A run of a million digits and spaces, where the plain pattern tries and backtracks at
    every digit, costs two character-class scans here.
    """

    _BLOCK = 4096

    def __init__(self, pattern: re.Pattern[str], *, run_chars: str, min_length: int, breaks: str,
                 reach: int) -> None:
        self._pattern = pattern
        self._runs = re.compile(rf"(?<![{run_chars}])[{run_chars}]{{{min_length},}}+", re.ASCII)
        self._breaks = re.compile(breaks, re.ASCII)
        self._reach = reach

    def sub(self, replace, text: str) -> str:
        pieces: list[str] = []
        done = 0  # text[:done] is in pieces
        for run in self._runs.finditer(text):
            for first, last_start in self._windows(text, *run.span()):
                for match in self._matches(text, max(first, done), last_start):
                    pieces.append(text[done:match.start()])
                    pieces.append(replace(match))
                    done = match.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _windows(self, text: str, run_start: int, run_stop: int):
        """Where matches may start, as (first, last_start) spans in order."""
        if run_stop - run_start <= self._BLOCK:
            yield run_start, run_stop
            return
        window = None
        for block_start in range(run_start, run_stop, self._BLOCK):
            block_stop = min(block_start + self._BLOCK, run_stop)
            # The run's last block always holds an end; any other block only if `breaks` shows one.
            if block_stop < run_stop and self._breaks.search(text, block_start, block_stop + 1) is None:
                continue
            first = max(run_start, block_start - self._reach)
            if window is not None and first <= window[1]:
                window = (window[0], block_stop)
                continue
            if window is not None:
                yield window
            window = (first, block_stop)
        if window is not None:
            yield window

    def _matches(self, text: str, position: int, last_start: int):
        # A match starting before `last_start` ends by `stop`; the search sees two characters
        # more, all any lookahead here needs. A match running past `stop` can only be one the
        # cut fooled, so it is judged again on the whole text.
        stop = last_start + self._reach
        limit = min(len(text), stop + 2)
        while position < last_start:
            match = self._pattern.search(text, position, limit)
            if match is None or match.start() >= last_start:
                return
            if match.end() > stop:
                start = match.start()
                match = self._pattern.match(text, start)
                if match is None:
                    position = start + 1
                    continue
            yield match
            position = max(match.end(), match.start() + 1)


# Inside a run, a card ends at a digit followed by a separator and a non-digit, so by two
# separators in a row; a phone ends at a digit before "+", "(" or ")", or before a space or dot and
# a non-digit. `reach` is the longest match (37 characters for a card, 41 for a phone) and some.
_CARDS = _NearEndsPattern(_CARD, run_chars="0-9 \\-", min_length=13, breaks=r"[ \-]{2}", reach=48)
_PHONES = _NearEndsPattern(_PHONE, run_chars="0-9 +().\\-", min_length=8, breaks=r"[+()]|[ .\-][ +().\-]",
                           reach=48)


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

    @classmethod
    def from_rules(cls, rules) -> Redactor:
        """From a `[redaction]` config (RedactionConfig) or anything with the same fields."""
        return cls(emails=rules.emails, phones=rules.phones, card_numbers=rules.card_numbers,
                   patterns=rules.patterns, replacement=rules.replacement)

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
                text = _CARDS.sub(self._card_or_original, text)
            if self._phones:
                text = _PHONES.sub(self._phone_or_original, text)
        return text

    def redact_json(self, value: object) -> object:
        """Return a copy with every string value redacted; keys and numbers are kept.

        A disabled redactor returns `value` itself rather than a copy.
        """
        if not self.enabled:
            return value
        return self._redact_value(value)

    def redacted_json_bytes(self, value: object) -> bytes:
        """`orjson.dumps(self.redact_json(value))`, without walking the value when its JSON shows
        that no string in it holds anything to redact (most captured bodies and headers): the
        built-in kinds need an "@" or a run of digits and separators, which a string keeps as is in
        its JSON. Custom patterns can match anything, so with any configured the walk always runs."""
        document = orjson.dumps(value)
        if not self.enabled or (not self._patterns and _nothing_to_redact(document)):
            return document
        return orjson.dumps(self._redact_value(value))

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


def _nothing_to_redact(document: bytes) -> bool:
    """True when no string in a JSON document (as orjson writes it) can hold an email, a card or a
    phone number, found by looking at the whole document at once. An email needs an "@". The rest
    lie in runs of digits and separators: a card needs 13 digits; a phone written with "+" 8 digits
    after it; any other phone (North American, or national with a leading 0) 10 digits with a
    separator among them. So a timestamp, a date, most ids and version numbers let the shortcut
    through. orjson escapes only '"', "\\" and control characters, none of them digits or
    separators, so a run in a string stands whole in the document; runs outside strings (numbers)
    can only make the answer False, never a wrong True."""
    if b"@" in document:
        return False
    marks = document.translate(_RUN_MARKS)
    start = marks.find(_EIGHT_RUN_MARKS)
    while start >= 0:  # `start` begins a run: the search goes on from the end of the last one
        end = marks.find(b"x", start)
        run = document[start:end] if end >= 0 else document[start:]
        if _may_hold_card_or_phone(run):
            return False
        if end < 0:
            break
        start = marks.find(_EIGHT_RUN_MARKS, end)
    return True


def _may_hold_card_or_phone(run: bytes) -> bool:
    digits = len(run) - len(run.translate(None, _DIGITS))
    if digits >= 13 or (digits >= 10 and len(run.strip(_SEPARATORS)) > digits):
        return True
    plus = run.find(b"+")
    if plus < 0:
        return False
    after_plus = run[plus:]
    return len(after_plus) - len(after_plus.translate(None, _DIGITS)) >= 8


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
