"""Which spans or log records of a serialized message can need redaction at all.

Reading every attribute of every record from protobuf costs more than the whole budget, and most
records hold nothing to redact. So one Hyperscan pass over the message's bytes looks for loose
versions of every detector pattern and of every key name with a rule; a cheap walk of the wire
format tells which record each hit lies in, and in it which attribute (or other part: name,
status, events, links, a log's body; a hit in ids or timestamps is none); and the redactor visits
only those (resources and scopes, which are few, always).

Each loose detector pattern must match some part of the UTF-8 bytes of everything its detector
confirms (a superset; a false hit only costs time), so:
- lookarounds are left out (Hyperscan has none, and leaving one out only widens the match);
- the detectors' Unicode classes are widened to their UTF-8 forms: \\w and \\s to any non-ASCII
  character, case-insensitive i, s and k to their non-ASCII folds (FOLDED_LETTERS); \\d is matched as
  ASCII digits, and any non-ASCII digit is a hit of its own;
- a detector whose check needs more than its pattern is loosened to what the check implies (a
  confirmed phone number has at least eight digits).
A key-name hit (a person key, a keyed rule, a word of a secret-key phrase) counts only when it lies
in a key string (KeyValue.key, found by parsing the record down to the hit: RecordKind.keys) that
has a rule: values such as "GET /v1/session", or "session" itself, are no reason to visit a span.
A one-word phrase is only looked for where a key can end with it (_phrase_pattern), so that most
such values ("/v1/session") are no hit at all.
Each record with hits is walked once, for all of them. The walks over the wire bytes are in C
(`_wire.c`, built by `pip install`); which key names have a rule stays here.
Maps and arrays nested beyond max_depth are masked whatever they hold: records with that many
container headers are visited.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import hyperscan

from telemetry_pipeline.cache import compile_database
from telemetry_pipeline.redaction._wire import Matches, select
from telemetry_pipeline.redaction.config import RedactionConfig
from telemetry_pipeline.redaction.detectors import Detector
from telemetry_pipeline.redaction.national_ids import loose_shapes
from telemetry_pipeline.redaction.service_tokens import loose_patterns

# Any non-ASCII character (upb has checked that strings are UTF-8).
_NON_ASCII = rb"[\xc2-\xf4][\x80-\xbf]{1,3}"
_WORD = rb"(?:[A-Za-z0-9_]|" + _NON_ASCII + rb")"
# Python's str \s: ASCII whitespace, \x1c-\x1f, and non-ASCII spaces.
_SPACE = rb"(?:[\t\n\x0b\x0c\r\x1c-\x1f ]|" + _NON_ASCII + rb")"
# The non-ASCII characters that match an ASCII letter case-insensitively in Python's re or
# lower-case to one: dotted and dotless I, long S, Kelvin sign. A record holding one is visited.
FOLDED_LETTERS = "\u0130\u0131\u017f\u212a"

# The first of each block of ten Unicode decimal digits (Python's str \d; Unicode 14, Python
# 3.11), checked against the running Python by the tests.
DIGIT_BLOCKS = (
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0,
    0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0,
    0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
)


def _non_ascii_digits() -> bytes:
    """The UTF-8 of every non-ASCII decimal digit, exactly: one branch per leading bytes."""
    by_prefix: dict[bytes, list[int]] = {}
    for first in DIGIT_BLOCKS[1:]:
        for code in range(first, first + 10):
            encoded = chr(code).encode()
            by_prefix.setdefault(encoded[:-1], []).append(encoded[-1])
    return b"(?:" + b"|".join(
        _escape(prefix) + b"[" + b"".join(b"\\x%02x" % last for last in lasts) + b"]"
        for prefix, lasts in by_prefix.items()
    ) + b")"


def _escape(raw: bytes) -> bytes:
    """Literal bytes as a pattern: letters and digits as they are (caseless applies), the rest as \\xNN."""
    return b"".join(
        bytes((byte,)) if chr(byte).isascii() and chr(byte).isalnum() else b"\\x%02x" % byte for byte in raw
    )


FOLDED_LETTER = b"|".join(_escape(letter.encode()) for letter in FOLDED_LETTERS)


_OTHER_DIGIT = _non_ascii_digits()
_DIGIT = rb"(?:[0-9]|" + _OTHER_DIGIT + rb")"


def _word(text: str) -> bytes:
    """An ASCII word as a pattern for a caseless match (Hyperscan's caseless is ASCII-only: the
    non-ASCII folds are FOLDED_LETTER, a hit of their own)."""
    if not text.isascii():
        raise ValueError(f"not ASCII: {text!r}")
    return _escape(text.encode())


_SECRET_WORDS = (
    "access|auth|authorization|api|credential|creds|key|passw(?:or)?d|passphrase|pwd|secret|token"
    "|session(?:[_-]?id)?|sid|cookie|signature|sig"
)
_ASSIGNMENT = rb"(?:=|>|:{1,3}=|\|\||:|=>|\?=|\.=|,)"

# Detector -> a loose bytes pattern; see the module doc. Digits are ASCII here (see _OTHER_DIGIT).
LOOSE_PATTERNS: dict[Detector, bytes] = {
    Detector.PRIVATE_KEY: rb"-----BEGIN",
    Detector.JWT: rb"eyJ[A-Za-z0-9_-]{8}",
    Detector.SLACK_WEBHOOK: rb"hooks\.slack\.com/",
    Detector.URL_CREDENTIALS: rb"://[^\t\n\x0b\x0c\r /?#@:'\"<>]+:[^\t\n\x0b\x0c\r /?#@'\"<>]+@",
    Detector.AWS_ACCESS_KEY: rb"(?:A3T[A-Z0-9]|AKIA|ABIA|ACCA|ASIA)[A-Z0-9]{16}",
    Detector.GITHUB_TOKEN: rb"gh[pousr]_[A-Za-z0-9]{36}|github_pat_",
    Detector.GITLAB_TOKEN: rb"gl(?:pat|ptt|dt|rt|cbt|oas|ft|imt|soat|ffct|agent)-",
    Detector.SLACK_TOKEN: rb"xox[abposre]|xapp-",
    Detector.STRIPE_KEY: rb"[sr]k_(?:test|live|prod)_",
    Detector.GOOGLE_API_KEY: rb"AIza",
    # These four are matched caselessly (CASELESS_DETECTORS).
    Detector.BEARER: b"bearer" + _SPACE,
    Detector.BASIC_AUTH: b"basic" + _SPACE,
    Detector.AWS_SECRET_KEY: b"aws(?:[.-]|" + _WORD + rb"){0,20}(?:secret|access|key)",
    # Anchored by its word, so it keeps Unicode digits itself.
    Detector.GENERIC_SECRET: (
        b"(?:" + _SECRET_WORDS.encode() + b")s?"
        + _DIGIT + rb"{0,3}(?:[ \t]+[A-Za-z]" + _WORD + rb"{0,11})?(?:['\"\\]|" + _SPACE + rb"){0,4}"
        + _ASSIGNMENT + rb"[`'\" \t=\\]{0,6}(?:\\n|\n)?[ \t]{0,8}(?:[.=+/~-]|" + _WORD + rb")"
    ),
    Detector.EMAIL: rb"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z0-9-]",
    Detector.IPV6: rb"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    # The lookbehinds as a consumed character: not after a word character, "." or "Chrome/".
    Detector.IPV4: rb"(?:^|^/|[^A-Za-z0-9_./]|[^A-Za-z]/)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    Detector.IBAN: rb"[A-Z]{2}[0-9]{2}[ -]?[A-Z0-9]{4}",
    Detector.US_SSN: rb"[0-9]{3}[ .-][0-9]{2}[ .-][0-9]{4}",
    Detector.CREDIT_CARD: rb"[0-9](?:[ -]?[0-9]){12}",
    Detector.CRYPTO_WALLET: rb"[13][1-9A-HJ-NP-Za-km-z]{25}|bc1[02-9ac-hj-np-z]{11}",
    Detector.MAC_ADDRESS: (
        rb"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\."
    ),
    # The shapes themselves: they hold no lookaround and only ASCII classes (national_ids.py).
    Detector.NATIONAL_ID: loose_shapes(),
    # A confirmed phone number has 8 to 15 digits (its check), at most two separators between two.
    Detector.PHONE: (
        rb"\+[0-9](?:[ .()-]{0,2}[0-9]){7}|\([0-9]{3}\)|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}"
        rb"|0[1-9][0-9]{1,3}[ /-][0-9]{3}"
    ),
}
CASELESS_DETECTORS = frozenset(
    {Detector.BEARER, Detector.BASIC_AUTH, Detector.AWS_SECRET_KEY, Detector.GENERIC_SECRET}
)

# A map or array value: the field holding the AnyValue (KeyValue.value 2, ArrayValue.values 1,
# LogRecord.body 5) and its length, then AnyValue field 5 or 6 and its length, then the first
# element (field 1). A record with max_depth of these can hold one nested deeper, which is masked
# whatever it holds. Without the holding field, every log attribute (LogRecord field 6, then
# KeyValue.key) and string body looked like one: 40% of all hits on the benchmark workload.
_CONTAINER = rb"[\x0a\x12\x2a][\x80-\xff]{0,4}[\x00-\x7f][\x2a\x32][\x80-\xff]{0,4}[\x00-\x7f]\x0a"
_KEY_PARTS = re.compile(r"[._\-\s]+")
_KEY_SEPARATOR = rb"(?:[._\x2d]|" + _SPACE + rb")"
_KEY_SEPARATORS = _KEY_SEPARATOR + b"+"
_MAX_CACHED_KEYS = 65_536
_MAX_CACHED_KEY_BYTES = 256

# Where attribute keys can be in a message: its length-delimited fields (by number) that can hold
# one, each mapped to the same for its content, or to None for a key string (KeyValue.key).
Keys = dict[int, "Keys | None"]
_KEY_VALUE: Keys = {1: None}
_ANY_VALUE: Keys = {6: {1: _KEY_VALUE}}  # kvlist_value: KeyValueList.values
_ANY_VALUE[5] = {1: _ANY_VALUE}  # array_value: ArrayValue.values
_KEY_VALUE[2] = _ANY_VALUE


class RecordKind(NamedTuple):
    """Spans or log records: the field number of their attribute list, where keys can be, and the
    other fields the redactor reads (a hit elsewhere, in ids, timestamps or trace state, which are
    binary or never redacted, needs no visit: random id bytes spell a loose pattern now and then)."""

    attributes: int
    keys: Keys
    scanned: frozenset[int]


SPAN = RecordKind(
    9, {9: _KEY_VALUE, 11: {3: _KEY_VALUE}, 13: {4: _KEY_VALUE}}, frozenset({5, 11, 13, 15})
)  # name, events, links, status
LOG_RECORD = RecordKind(6, {5: _ANY_VALUE, 6: _KEY_VALUE}, frozenset({5}))  # body


# Which parts of a record to visit: the rest (name, status, events, links; a log's body) or not,
# and the indices of the attributes (those in the payload; the enricher's come after them).
RecordParts = tuple[bool, list[int]]


class RecordSelection:
    """What a wire walk found in a TracesData or LogsData payload, and which records had a hit.

    `scopes_per_resource` and `records_per_scope` (in message order) let the caller check the
    payload describes the message; `hits[i]` are the records to visit in scope i: their index
    and their parts to visit (None: all of the record).
    """

    __slots__ = ("hits", "records_per_scope", "scopes_per_resource")

    def __init__(
        self, scopes_per_resource: list[int], records_per_scope: list[int],
        hits: list[list[tuple[int, RecordParts | None]]],
    ) -> None:
        self.scopes_per_resource = scopes_per_resource
        self.records_per_scope = records_per_scope
        self.hits = hits


class Prefilter:
    """`has_key_rule(key)`: whether an attribute key is masked, hashed or dropped for its name."""

    def __init__(self, config: RedactionConfig, has_key_rule: Callable[[str], bool]) -> None:
        # A secret key's name, lower-cased, holds its phrase: the words with separators between.
        phrases = sorted({tuple(parts) for parts in map(_phrase_words, config.secret_keys) if parts})
        keys = sorted({*config.person_keys, *config.key_rules})
        self.usable = all(word.isascii() for phrase in phrases for word in phrase)
        key_patterns = [(_escape(key.encode()), 0) for key in keys]
        caseless = hyperscan.HS_FLAG_CASELESS
        key_patterns += [(_phrase_pattern(phrase), caseless) for phrase in phrases]
        # Only the configured regions' identifier shapes: they are the costliest patterns to scan for.
        national_ids = loose_shapes(frozenset(config.regions))
        self._database, self._first_key_id = _database(tuple(key_patterns), national_ids)
        self._max_depth = config.max_depth
        self._has_key_rule = has_key_rule
        self._rule_keys: dict[bytes, bool] = {}  # key string -> has a rule

    def select(self, payload: bytes, kind: RecordKind) -> RecordSelection | None:
        """The records of a serialized TracesData or LogsData to visit, and which of their parts;
        None if the bytes do not walk. `kind`: SPAN or LOG_RECORD."""
        if not self.usable:
            return None
        try:
            return self._select(payload, kind)
        except (ValueError, IndexError):  # not a well-formed TracesData or LogsData
            return None

    def _select(self, payload: bytes, kind: RecordKind) -> RecordSelection:
        matches = Matches()
        self._database.scan(payload, match_event_handler=matches)
        scopes_per_resource, records_per_scope, hits = select(
            payload, matches, self._first_key_id, self._max_depth, kind.attributes << 3 | 2, kind.keys,
            kind.scanned, self._is_rule_key,
        )
        return RecordSelection(scopes_per_resource, records_per_scope, hits)

    def _is_rule_key(self, raw: bytes) -> bool:
        known = self._rule_keys.get(raw)
        if known is None:
            try:
                known = self._has_key_rule(raw.decode())
            except UnicodeDecodeError:
                known = False  # no key: upb has checked every string is UTF-8
            # Long keys are rare: not cached, which bounds the cache in bytes, not only in count.
            if len(raw) > _MAX_CACHED_KEY_BYTES:
                return known
            if len(self._rule_keys) >= _MAX_CACHED_KEYS:
                self._rule_keys.clear()
            self._rule_keys[raw] = known
        return known


@functools.cache
def _database(
    key_patterns: tuple[tuple[bytes, int], ...], national_ids: bytes | None = None
) -> tuple[hyperscan.Database, int]:
    """One compiled database per set of key names and regions (compiling takes a while; configs
    are few; telemetry_pipeline.cache keeps it for the next process). `national_ids`: the regions'
    identifier shapes (None: every region's, b"": none). The service-token rules (service_tokens.py)
    are in it too, in Hyperscan's prefilter mode (a superset of each rule's matches) as value hits:
    one pass over the bytes, not two (a second pass cost ~0.4 us per span). Pattern ids: the container
    header first (id 0, which `_wire.select` counts per record), then the value patterns, then the key
    names from the returned id on."""
    caseless = hyperscan.HS_FLAG_CASELESS
    loose = LOOSE_PATTERNS if national_ids is None else {**LOOSE_PATTERNS, Detector.NATIONAL_ID: national_ids}
    patterns = [(_CONTAINER, 0), (FOLDED_LETTER, 0), (_OTHER_DIGIT, 0)]
    patterns += [(pattern, caseless if detector in CASELESS_DETECTORS else 0)
                 for detector, pattern in loose.items() if pattern]
    patterns += [
        (pattern, hyperscan.HS_FLAG_PREFILTER | (caseless if is_caseless else 0))
        for pattern, is_caseless in loose_patterns()
    ]
    first_key_id = len(patterns)
    patterns += key_patterns
    database = compile_database([pattern for pattern, _ in patterns], [flags for _, flags in patterns])
    return database, first_key_id


def _phrase_pattern(phrase: tuple[str, ...]) -> bytes:
    """Where a key can end with the phrase's words. A one-word phrase ("session", the most common
    word of them in values: "/v1/session") only after a separator or as the key's first word,
    whose length is the byte before it: exactly the word's, or more with separators after it."""
    words = [_escape(word.encode()) for word in phrase]
    if len(words) > 1:
        return _KEY_SEPARATORS.join(words)
    word = words[0]
    first = b"(?:" + _KEY_SEPARATOR + b"|\\x%02x)" % len(phrase[0]) + word
    return first + b"|[\\x00-\\x7f]" + word + _KEY_SEPARATOR


def _phrase_words(phrase: str) -> list[str]:
    return [word for word in _KEY_PARTS.split(phrase.lower()) if word]
