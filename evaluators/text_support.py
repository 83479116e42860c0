"""Text helpers shared by the LLM-free evaluators: normalising, tokenising, light stemming, similarity.

Everything here is plain Python and regular expressions, fast enough to score thousands of answers
a second on one core. It is tuned for English; other languages still tokenise, without stemming.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

# A token is a number (digits with inner separators: 6.213, 1,000, 3:45) or a run of letters and
# digits (u2, 19th, mp3), optionally joined by an apostrophe (o'neill, don't). Other symbols split.
TOKEN_RE = re.compile(r"\d+(?:[.,:/]\d+)*(?![^\W_])|[^\W_]+(?:'[^\W_]+)*")

# Sentence ends: ., !, ? followed by whitespace, or glued to a capital letter as in scraped text
# ("…century.First for Women…"), or newlines. Decimal points and initials like "U.S." survive.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|(?<=[a-z0-9\"')][.!?])(?=[A-Z][a-z])|\n+")

_ABBREVIATION_END_RE = re.compile(r"(?:\b[A-Z]\.){1,3}$|\b(?:Dr|Mr|Mrs|Ms|St|Jr|Sr|Prof|vs|No|Mt|Inc|Co|e\.g|i\.e)\.$")

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
each either else etc ever every few for from further had hadn't has hasn't have haven't having he he'd he'll
he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't
it it's its itself just let's like may me might more most much must mustn't my myself neither no nor not of
off often on once one only or other ought our ours ourselves out over own per perhaps quite rather really
same shall shan't she she'd she'll she's should shouldn't since so some such than that that's the their
theirs them themselves then there there's these they they'd they'll they're they've this those though
through thus to too under until up upon us very via was wasn't we we'd we'll we're we've were weren't what
what's when when's where where's whether which while who who's whom whose why why's will with within without
won't would wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves
called known named became become becomes well many several another among instead actually
""".split())

NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without"})

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
    "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
}

# Longest suffix first; each leaves a stem of at least three letters. Deliberately lighter than
# Porter: it merges inflections (involved/involvement, countries/country) without mangling names.
_SUFFIXES = (
    ("ational", "ate"), ("ments", ""), ("ment", ""), ("ingly", ""), ("edly", ""), ("ings", ""),
    ("ing", ""), ("ies", "y"), ("ied", "y"), ("ness", ""), ("ers", ""), ("er", ""), ("ed", ""),
    ("ly", ""), ("es", ""), ("s", ""),
)


def normalize_text(text: str) -> str:
    """NFKC, straight quotes and apostrophes, casefolded."""
    return unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()


def tokens(text: str) -> list[str]:
    """Lower-case word and number tokens of `text`."""
    return TOKEN_RE.findall(normalize_text(text))


def raw_tokens(text: str) -> list[str]:
    """Tokens with their original case (to spot names), after NFKC and quote normalisation."""
    return TOKEN_RE.findall(unicodedata.normalize("NFKC", text).translate(_QUOTES))


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A light, cached stem of a lower-case token; numbers become canonical digits."""
    if token[0].isdigit():
        return canonical_number(token)
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    if token.endswith("'s"):
        token = token[:-2]
    for suffix, replacement in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: len(token) - len(suffix)] + replacement
            break
    if len(token) > 3 and token.endswith("e"):
        token = token[:-1]
    # doubled consonant after a stripped suffix: "stopped" -> "stopp" -> "stop"
    if len(token) > 3 and token[-1] == token[-2] and token[-1] not in "aeiouls":
        token = token[:-1]
    return token


def canonical_number(token: str) -> str:
    """'1,000' -> '1000', '6.20' -> '6.2', '007' -> '7'; other shapes (dates, times) stay as they are."""
    if "," in token and re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        token = token.replace(",", "")
    if re.fullmatch(r"\d+", token):
        return token.lstrip("0") or "0"
    if re.fullmatch(r"\d+\.\d+", token):
        whole, fraction = token.split(".")
        fraction = fraction.rstrip("0")
        return (whole.lstrip("0") or "0") + ("." + fraction if fraction else "")
    return token


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, stripped, empty ones dropped; "U.S. magazine" and "Dr. Who" stay whole."""
    sentences: list[str] = []
    for part in _SENTENCE_END_RE.split(text):
        part = part.strip() if part else ""
        if not part:
            continue
        if sentences and (part[0].islower() or _ABBREVIATION_END_RE.search(sentences[-1])):
            sentences[-1] = f"{sentences[-1]} {part}"
        else:
            sentences.append(part)
    return sentences


def normalize_for_comparison(text: str) -> str:
    """Casefolded, punctuation removed, whitespace collapsed: the form two prose answers are compared in."""
    return " ".join(tokens(text))


def token_f1(a: list[str], b: list[str]) -> float:
    """SQuAD-style F1 over token multisets; two empty lists agree perfectly."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def char_ngram_dice(a: str, b: str, n: int = 3) -> float:
    """Dice coefficient over character n-gram multisets of two normalised strings."""
    if a == b:
        return 1.0
    grams_a = Counter(a[i:i + n] for i in range(max(len(a) - n + 1, 1)))
    grams_b = Counter(b[i:i + n] for i in range(max(len(b) - n + 1, 1)))
    total = sum(grams_a.values()) + sum(grams_b.values())
    return 2 * sum((grams_a & grams_b).values()) / total if total else 1.0


# A claim ends at ., ! or ? (closing quotes and brackets allowed) before white space and a capital
# or a digit, or at a newline. Unlike split_sentences, an initial ("Stephen R.") ends one too: an
# appended sentence must not hide inside the one before it; fragments too short to claim anything
# ("Dr.", "J.") are joined to what follows instead.
_CLAIM_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_CLAIM_MIN_WORDS = 2


def claims(text: str) -> list[str]:
    """The sentences of `text` as separate claims, for telling which ones another answer supports."""
    found: list[str] = []
    pending = ""
    for part in _CLAIM_END_RE.split(text):
        part = f"{pending} {part.strip()}".strip() if part else pending
        if len(content_stems(part)) < _CLAIM_MIN_WORDS:
            pending = part
            continue
        found.append(part)
        pending = ""
    if pending:
        if found:
            found[-1] = f"{found[-1]} {pending}"
        else:
            found.append(pending)
    return found


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry content: tokens that are not stopwords."""
    return [stem(token) for token in tokens(text) if token not in STOPWORDS]


def added_content(answer: str, reference: str, *, supported_at: float = 0.5) -> tuple[float, list[str]]:
    """What `answer` says that `reference` does not, asymmetrically: (share of the answer's content
    words that are new words in sentences the reference does not support, those sentences).

    A sentence is supported when at least `supported_at` of its content words appear in the
    reference; a reworded sentence usually is, an appended claim usually is not. Only the new words
    of an unsupported sentence count, so a sentence that half repeats the reference counts half.
    """
    known = set(content_stems(reference))
    total = added = 0
    sentences = []
    for sentence in claims(answer):
        words = content_stems(sentence)
        if not words:
            continue
        total += len(words)
        new = sum(word not in known for word in words)
        if len(words) - new < supported_at * len(words):
            added += new
            sentences.append(sentence)
    return (added / total if total else 0.0), sentences
