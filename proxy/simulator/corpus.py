"""The simulator's built-in knowledge: short documents about the fictional Northwind Cloud,
and the word-overlap matching that picks a document or sentence for a question."""

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str
    updated_at: str
    version: int


CORPUS: tuple[Document, ...] = (
    Document("billing", "Billing", "Northwind Cloud bills usage monthly in arrears, on the first "
             "day of each month. Invoices are payable within 30 days by card or bank transfer. "
             "Credits from promotions are applied before any card is charged.",
             "2024-11-04", 3),
    Document("regions", "Regions", "Northwind Cloud runs in three regions: eu-west, us-east and "
             "ap-south. Data never leaves the region a project was created in. A fourth region, "
             "us-west, opens in the second quarter of 2025.",
             "2025-01-20", 5),
    Document("sla", "Service Level Agreement", "The Business and Enterprise tiers carry a 99.95% "
             "monthly uptime SLA. If uptime falls below that, customers receive a 10% service "
             "credit for each full 0.1% missed. The Starter tier has no SLA.",
             "2024-09-12", 2),
    Document("rate-limits", "API Rate Limits", "The public API allows 600 requests per minute "
             "per project on the Starter tier and 6000 on Business. Requests over the limit get "
             "HTTP 429 with a Retry-After header. Enterprise limits are set per contract.",
             "2025-02-03", 4),
    Document("retention", "Data Retention", "Logs are kept for 30 days and then deleted. Deleted "
             "projects are recoverable for 14 days, after which all data is purged. Enterprise "
             "customers can extend log retention to one year.",
             "2024-06-30", 2),
    Document("support", "Support Hours", "Standard support answers tickets from 08:00 to 18:00 "
             "CET on weekdays. Enterprise customers get 24/7 phone support with a one-hour "
             "response target for severity 1 incidents.",
             "2024-10-01", 3),
    Document("pricing", "Pricing Tiers", "Northwind Cloud has three pricing tiers: Starter at "
             "$0 per month, Business at $49 per seat per month, and Enterprise with custom "
             "pricing. Annual plans on Business get two months free.",
             "2025-03-01", 7),
    Document("backups", "Backups", "Databases are backed up every six hours and backups are "
             "kept for 35 days. Point-in-time restore is available on Business and Enterprise. "
             "Backups are encrypted and stored in a second zone of the same region.",
             "2024-12-15", 3),
    Document("sso", "Single Sign-On", "Single sign-on with SAML 2.0 and OpenID Connect is "
             "included in the Enterprise tier. Business customers can add SSO for $200 per "
             "month. SCIM provisioning syncs users and groups every 40 minutes.",
             "2024-08-22", 2),
    Document("incidents", "Incident Policy", "Incidents are posted on status.northwind.example "
             "within 15 minutes of detection. A written post-mortem follows every severity 1 "
             "incident within five business days.",
             "2024-05-09", 1),
    Document("security", "Security and Compliance", "Northwind Cloud is certified to ISO 27001 "
             "and audited yearly for SOC 2 Type II. All data is encrypted at rest with AES-256 "
             "and in transit with TLS 1.3.",
             "2025-01-07", 4),
    Document("api-keys", "API Keys", "API keys are created per project in the console and can be "
             "scoped to read-only access. Keys that are unused for 90 days are disabled "
             "automatically. A leaked key should be rotated at once from the console.",
             "2024-07-18", 2),
)

# Words that match everything and so would decide nothing.
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from get has have how i in is it its my "
    "of on or our the their there this to was we what when where which who why will with "
    "you your me us they".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens of text, in order."""
    return _WORD.findall(text.lower())


def key_words(text: str) -> set[str]:
    """The words of text that carry meaning, with a naive plural folded away."""
    return {_fold(w) for w in words(text) if w not in _STOPWORDS}


def _fold(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def sentences(text: str) -> list[str]:
    """Split text into sentences, dropping empty pieces."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def best_sentence(question: str, passages: list[str]) -> str:
    """The sentence of passages sharing most key words with question; the earliest wins ties."""
    wanted = key_words(question)
    candidates = [s for passage in passages for s in sentences(passage)] or [""]
    # max() keeps the first of equal scores, which makes ties deterministic.
    return max(candidates, key=lambda sentence: len(wanted & key_words(sentence)))


def best_document(question: str, documents: tuple[Document, ...] = CORPUS) -> Document:
    """The document sharing most key words with question; corpus order breaks ties."""
    wanted = key_words(question)
    return max(documents, key=lambda doc: len(wanted & _document_words(doc)))


@lru_cache(maxsize=256)
def _document_words(doc: Document) -> frozenset[str]:
    return frozenset(key_words(f"{doc.title} {doc.text}"))
