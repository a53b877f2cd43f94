"""Value detectors: cheap gates pick the detectors that could match, one combined regex of those
finds candidates, and a check per detector confirms them.

A value is searched once by one alternation of named groups, not once per detector, and only for
the detectors whose gate it passes (a digit, an '@', a ':', a secret-like word, a vendor prefix).
A candidate only counts after its check (Luhn, mod-97, SSN ranges, a JWT header that decodes, a
parseable IPv6 address, entropy next to a secret-like word): that is what keeps trace ids, UUIDs,
timestamps, commit hashes and plain numbers out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Callable
from enum import StrEnum

import hyperscan
import phonenumbers
from stdnum import bitcoin

from telemetry_pipeline.cache import compile_database
from telemetry_pipeline.redaction.national_ids import ID_STARTS, PUBLISHED_EXAMPLES, NationalIds
from telemetry_pipeline.redaction.service_tokens import (
    RULES,
    confirmed,
    is_placeholder,
    loose_patterns,
    shannon_entropy,
)


class Detector(StrEnum):
    EMAIL = "email"
    CREDIT_CARD = "credit_card"
    IBAN = "iban"
    US_SSN = "us_ssn"
    PHONE = "phone"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    JWT = "jwt"
    BEARER = "bearer_token"
    BASIC_AUTH = "basic_auth"
    URL_CREDENTIALS = "url_credentials"
    AWS_ACCESS_KEY = "aws_access_key"
    AWS_SECRET_KEY = "aws_secret_key"
    GITHUB_TOKEN = "github_token"
    GITLAB_TOKEN = "gitlab_token"
    SLACK_TOKEN = "slack_token"
    SLACK_WEBHOOK = "slack_webhook"
    STRIPE_KEY = "stripe_key"
    GOOGLE_API_KEY = "google_api_key"
    PRIVATE_KEY = "private_key"
    GENERIC_SECRET = "generic_secret"
    NATIONAL_ID = "national_id"  # national, tax, health, licence and vehicle numbers (national_ids.py)
    MAC_ADDRESS = "mac_address"
    CRYPTO_WALLET = "crypto_wallet"
    SERVICE_TOKEN = "service_token"  # tokens and keys of named services (service_tokens.py)


# Vendor tokens, recognised by their prefix alone. Also used to name what a generic
# "secret-word = value" match actually is.
_TOKEN_PATTERNS: dict[Detector, str] = {
    Detector.AWS_ACCESS_KEY: (
        r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ABIA|ACCA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    ),
    Detector.GITHUB_TOKEN: (
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"
    ),
    # Agent tokens and OAuth application secrets are longer than the rest (GitLab's token docs,
    # https://docs.gitlab.com/security/tokens/): shorter ones are no tokens.
    Detector.GITLAB_TOKEN: (
        r"(?<![A-Za-z0-9_-])(?:gl(?:pat|ptt|dt|rt|cbt|ft|imt|soat|ffct)-[A-Za-z0-9_-]{20,64}"
        r"|glagent-[A-Za-z0-9_-]{50,1024}|gloas-[A-Za-z0-9_-]{64})(?![A-Za-z0-9_-])"
    ),
    Detector.SLACK_TOKEN: r"(?<![A-Za-z0-9])(?:xox[abposr]|xapp|xoxe(?:\.xox[bp])?)-[A-Za-z0-9-]{8,}",
    Detector.STRIPE_KEY: r"(?<![A-Za-z0-9])[sr]k_(?:test|live|prod)_[A-Za-z0-9]{10,99}(?![A-Za-z0-9])",
    Detector.GOOGLE_API_KEY: r"(?<![\w-])AIza[\w-]{35}(?![\w-])",
}

_SECRET_WORDS = (
    r"access|auth|authorization|api|credential|creds|key|passw(?:or)?d|passphrase|pwd|secret|token"
    r"|session(?:[_-]?id)?|sid|cookie|signature|sig"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

# Order matters only between branches that can start at the same character.
PATTERNS: dict[Detector, str] = {
    # The body stops at the first "--" (its END line, or the next BEGIN), which keeps the scan linear;
    # a block cut short (no END) is still masked.
    Detector.PRIVATE_KEY: (
        r"-----BEGIN[A-Z0-9 _-]{0,60}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[A-Za-z0-9+/=\s:,.\\]|-(?!-)){64,16384}(?:-----END[A-Z0-9 _-]{0,60}PRIVATE KEY(?: BLOCK)?-----)?"
    ),
    Detector.JWT: r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{2,}\.?[A-Za-z0-9_-]*={0,2}",
    Detector.SLACK_WEBHOOK: r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}",
    # Only the user:password part is masked; scheme and host stay readable.
    Detector.URL_CREDENTIALS: r"(?<=://)[^\s/?#@:'\"<>]{1,64}:[^\s/?#@'\"<>]{1,128}(?=@)",
    **_TOKEN_PATTERNS,
    Detector.BEARER: r"(?i:\bbearer)\s+(?P<bearer_token_v>[A-Za-z0-9._~+/=-]{16,})",
    Detector.BASIC_AUTH: r"(?i:\bbasic)\s+(?P<basic_auth_v>[A-Za-z0-9+/]{8,}={0,2})",
    Detector.AWS_SECRET_KEY: (
        r"(?i:aws)[\w.-]{0,20}?(?i:secret|access|key)[\w.-]{0,20}[\s'\"]{0,3}[:=]{1,2}[\s'\"]{0,3}"
        r"(?P<aws_secret_key_v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    ),
    # A name ending in a secret-like word (a digit or two may follow it), an assignment in any of
    # the usual notations (=, :, :=, =>, ||, ...) with optional quotes and spaces, then the value:
    # `api_token = ...` counts; `key_length = ...` and `accessor: ...` do not, as the word must end
    # the name.
    Detector.GENERIC_SECRET: (
        rf"(?i:(?P<generic_secret_k>{_SECRET_WORDS})s?\d{{0,3}})(?![A-Za-z0-9_])(?:[ \t]+[A-Za-z]\w{{0,11}})?"
        r"[\s'\"\\]{0,4}(?:=|>|:{1,3}=|\|\||:|=>|\?=|\.=|,)[`'\" \t=\\]{0,6}(?:\\n|\n)?[ \t]{0,8}"
        # The value's start; value_end finds where it really ends.
        r"(?P<generic_secret_v>[\w.=+/~-]{1,150})"
    ),
    Detector.EMAIL: (
        r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
        r"\.(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})(?![\w-])"
    ),
    # Six hex octets split by one kind of separator, or Cisco's three dotted groups of four.
    Detector.MAC_ADDRESS: (
        r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}(?P<mac_address_s>[:-])(?:[0-9A-Fa-f]{2}(?P=mac_address_s)){4}[0-9A-Fa-f]{2}"
        r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:.-])"
    ),
    Detector.IPV6: (
        rf"(?<![\w:.%])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}})?"
        r"(?:%[A-Za-z0-9._-]+)?(?:/\d{1,3}(?!\d))?(?![\w:]|\.\d)"
    ),
    # Not after "name/": "Chrome/124.0.0.0" is a version; "http://10.0.0.1" is an address.
    Detector.IPV4: rf"(?<![\w.])(?<![A-Za-z]/){_IPV4}(?:/\d{{1,2}}(?!\d))?(?!\w)",
    Detector.IBAN: r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}[ -]?(?:[A-Z0-9]{4}[ -]?){2,7}[A-Z0-9]{1,4}(?![A-Za-z0-9])",
    Detector.US_SSN: r"(?<![\w.-])\d{3}(?P<us_ssn_s>[ .-])\d{2}(?P=us_ssn_s)\d{4}(?![\w-]|\.\d)",
    Detector.CREDIT_CARD: r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])",
    # Bitcoin: base58check (P2PKH, P2SH) and bech32/bech32m (segwit, taproot) addresses.
    Detector.CRYPTO_WALLET: (
        r"(?<![\w])(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71})(?![\w])"
    ),
    Detector.PHONE: (
        r"(?<![\w+])(?:"
        r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){1,5}"  # international
        r"|(?:\d{1,3}[ .-])?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"  # (415) 555-0132
        r"|(?:\d{1,3}-)?\d{3}(?P<phone_s>[.-])\d{3}(?P=phone_s)\d{4}"  # 415-555-0132, 91-415-555-0132
        # National trunk prefix (020 7946 0123), not inside a longer run of digit groups.
        r"|(?<!\d[ .-])0[1-9]\d{1,3}[ /-]\d{3,4}[ -]?\d{3,4}"
        r")(?![\w-]|[ .-]\d)"
    ),
}


def _combined(patterns: dict[Detector, str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{name.value}>{pattern})" for name, pattern in patterns.items()))


_TOKEN_NAMER = _combined(_TOKEN_PATTERNS)

# Cheap necessary conditions, one per group of detectors: most telemetry strings pass none or
# one, and are then searched by a regex of only the detectors that could match (cached per
# combination), or not at all. Each gate must hold for every match of its detectors.
_GATES: tuple[tuple[Callable[[str], re.Match[str] | None], frozenset[Detector]], ...] = (
    (
        re.compile(r"\d").search,
        frozenset({
            Detector.IPV4, Detector.IBAN, Detector.US_SSN, Detector.CREDIT_CARD, Detector.PHONE,
            Detector.CRYPTO_WALLET,
        }),
    ),
    (
        re.compile(r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.").search,
        frozenset({Detector.MAC_ADDRESS}),
    ),
    (re.compile("@").search, frozenset({Detector.EMAIL, Detector.URL_CREDENTIALS})),
    (re.compile(":").search, frozenset({Detector.IPV6})),
    (
        re.compile(r"(?i)access|auth|api|cred|key|pass|pwd|secret|token|session|sid|cookie|sig|bearer|basic").search,
        frozenset({Detector.GENERIC_SECRET, Detector.BEARER, Detector.BASIC_AUTH, Detector.AWS_SECRET_KEY}),
    ),
    (
        re.compile(r"eyJ|-----BEGIN|hooks\.slack\.com|xox|xapp|A3T|AKIA|ABIA|ACCA|ASIA|gh[pousr]_|github_pat_"
                   r"|gl[a-z]{1,5}-|[sr]k_|AIza").search,
        frozenset({*_TOKEN_PATTERNS, Detector.JWT, Detector.PRIVATE_KEY, Detector.SLACK_WEBHOOK}),
    ),
)
_scanners: dict[int, re.Pattern[str]] = {}


def _scanner(gates: int) -> re.Pattern[str]:
    scanner = _scanners.get(gates)
    if scanner is None:
        wanted: set[Detector] = set()
        for bit, (_, detectors) in enumerate(_GATES):
            if gates >> bit & 1:
                wanted |= detectors
        scanner = _combined({name: pattern for name, pattern in PATTERNS.items() if name in wanted})
        _scanners[gates] = scanner
    return scanner

# ISO 13616 registry: IBAN length per country.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
_DIGIT_SEPARATORS = str.maketrans("", "", " -.()/+")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card(text: str) -> bool:
    digits = text.translate(_DIGIT_SEPARATORS)
    if not 13 <= len(digits) <= 19 or digits[0] not in "123456" or len(set(digits)) == 1:
        return False
    # Epoch timestamps in ms, us and ns are 13, 16 and 19 digits starting with 1: not cards.
    if digits[0] == "1" and len(digits) in (13, 16, 19) and digits == text:
        return False
    return luhn_valid(digits)


def iban_valid(compact: str) -> bool:
    """`compact`: an IBAN without separators."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban_length(text: str) -> int:
    """How many leading characters of `text` are a valid IBAN (0: none). The candidate regex may
    have run on into a following word ("...8741 ALL CAPS"), so shorter cuts at separators count too."""
    cuts = [index for index, char in enumerate(text) if char in " -"]
    for end in (len(text), *reversed(cuts)):
        if iban_valid(text[:end].translate(_DIGIT_SEPARATORS)):
            return end
    return 0


def _ssn(text: str) -> bool:
    digits = text.translate(_DIGIT_SEPARATORS)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and digits not in PUBLISHED_EXAMPLES
    )


def _phone(text: str) -> bool:
    if not 8 <= len(text.translate(_DIGIT_SEPARATORS)) <= 15:
        return False
    if not text.startswith("+"):
        return True  # national formats: the shapes of the pattern are the check
    # International: a country code that exists and a length that country's numbers can have
    # (libphonenumber's metadata; "+12 3456 7890" has no country 12).
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def _mac(text: str) -> bool:
    # The broadcast and the all-zero address name no device.
    return len(set(text.translate(_DIGIT_SEPARATORS).replace(":", "").lower())) > 1


def _crypto_wallet(text: str) -> bool:
    if text.startswith("bc1p"):
        # Taproot (bech32m, whose checksum stdnum does not check): the length fixes the format.
        return len(text) == 62
    return bool(bitcoin.is_valid(text))


def _ipv6(text: str) -> bool:
    address = text.split("/", 1)[0].split("%", 1)[0]
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwt(text: str) -> bool:
    # A header that does not decode makes no usable token (detect-secrets' rule; gitleaks, by
    # shape alone, disagrees on one of its test tokens).
    try:
        header = _b64decode(text.split(".", 1)[0]).rstrip()
    except (binascii.Error, ValueError):
        return False
    return header.endswith(b"}") and (b'"alg"' in header or b'"typ"' in header)


def _basic(value: str) -> bool:
    try:
        return b":" in base64.b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False


def _bearer(value: str) -> bool:
    # "Bearer authentication failed" is prose; a token has digits or symbols.
    return not value.isalpha()


def _slack(text: str) -> bool:
    parts = text.split("-")[1:]
    if text.startswith(("xoxa-", "xoxr-")) and parts:
        # Legacy workspace tokens: an optional digit and one mixed blob of 8 to 48 characters.
        blob = parts[-1]
        return len(blob) >= 8 and not blob.isalpha() and not blob.isdigit() and shannon_entropy(blob) >= 3.0
    if not parts or len(parts[-1]) < 6 or sum(map(len, parts)) < 20:
        return False
    # Real tokens carry a numeric team or user id, or a long mixed blob: not xoxb-xxxx placeholders.
    if any(len(part) >= 6 and part.isdigit() for part in parts):
        return True
    # Refresh and config tokens: "xoxe-1-" and one long mixed blob.
    return len(parts) == 2 and len(parts[1]) >= 30 and not parts[1].isalpha() and not parts[1].isdigit()


# Words whose value is a secret whatever it looks like (a Cookie header holds session ids).
_PASSWORD_WORDS = ("pass", "pwd", "secret", "cookie")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _in_query_string(text: str, keyword_start: int) -> bool:
    """Whether the name holding the keyword is a URL query parameter (`?api_key=`, `&X-Amz-Signature=`)."""
    start = keyword_start
    while start and text[start - 1] in _NAME_CHARS:
        start -= 1
    return start > 0 and text[start - 1] in "?&;"


def _generic(keyword: str, value: str, in_query: bool) -> bool:
    if is_placeholder(value):
        return False
    if in_query or keyword.lower().startswith(_PASSWORD_WORDS):
        # After "password=" or "?token=" anything is a secret, however short.
        return len(value) >= 3
    return (
        len(value) >= 10
        and any(char.isdigit() for char in value)
        and any(char.isalpha() for char in value)
        and shannon_entropy(value) >= 3.0
    )


def _not_placeholder(token: str) -> bool:
    """`ghp_xxxx...` and `AIzaaaaa...` are documentation placeholders, not keys."""
    return shannon_entropy(token) >= 3.0


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    Detector.GITHUB_TOKEN: _not_placeholder,
    Detector.GITLAB_TOKEN: _not_placeholder,
    Detector.GOOGLE_API_KEY: _not_placeholder,
    Detector.STRIPE_KEY: _not_placeholder,
    Detector.CREDIT_CARD: _card,
    Detector.US_SSN: _ssn,
    Detector.PHONE: _phone,
    Detector.IPV6: _ipv6,
    Detector.MAC_ADDRESS: _mac,
    Detector.CRYPTO_WALLET: _crypto_wallet,
    Detector.JWT: _jwt,
    Detector.SLACK_TOKEN: _slack,
}


class Finding:
    """One confirmed detection: the detector and the [start, end) span of text to replace."""

    __slots__ = ("detector", "end", "start")

    def __init__(self, detector: Detector, start: int, end: int) -> None:
        self.detector = detector
        self.start = start
        self.end = end


# Detectors recognised by context ("password=", "Bearer "): when the value fails its check, what
# follows the context word may still hold something else, so the scan resumes right after the
# match start. Other candidates are tokens of their own: a rejected one is skipped whole, so the
# inside of an IBAN that fails mod-97 is not re-read as a phone number.
# Card candidates also resume early: "20241 440-600-5124" is no card, but holds a phone number.
_CONTEXT_DETECTORS = frozenset(
    {Detector.GENERIC_SECRET, Detector.BEARER, Detector.BASIC_AUTH, Detector.CREDIT_CARD}
)


ALL_NATIONAL_IDS = NationalIds()
_ASSIGNMENT_CHARS = re.compile(r"[=:>,|]")  # the first character of every assignment gitleaks knows
_DIGIT_GATE = 1  # bit 0: the text holds a digit


def find(text: str, national_ids: NationalIds = ALL_NATIONAL_IDS) -> list[Finding]:
    """All confirmed detections in `text`, left to right, non-overlapping. `national_ids`: the
    families of the configured regions."""
    findings: list[Finding] = []
    gates = 0
    for bit, (gate, _) in enumerate(_GATES):
        if gate(text):
            gates |= 1 << bit
    if not gates:
        # Of the service tokens only those of letters can be here ("hf_" and 34 letters): each of
        # their formats holds an underscore, or they follow a name and an assignment (gitleaks'
        # "provider = value" rules, which need no digit); test_service_tokens checks it.
        return _find_service_tokens(text) if "_" in text or _ASSIGNMENT_CHARS.search(text) else findings
    search = _scanner(gates).search
    match = search(text)
    while match is not None:
        finding = _confirm(match)
        if finding is not None:
            findings.append(finding)
            position = finding.end
        elif match.lastgroup in _CONTEXT_DETECTORS:
            position = match.start() + 1
        else:
            position = match.end()
        match = search(text, max(position, match.start() + 1))
    if gates & _DIGIT_GATE and national_ids.candidates is not None:
        numbers = _find_national_ids(text, national_ids)
        if numbers:
            findings = _merge(findings, numbers)
    tokens = _find_service_tokens(text)
    if tokens:
        findings = _merge(findings, tokens)
    return findings


@functools.cache
def rule_database() -> hyperscan.Database:
    """Every service-token rule's own regex in Hyperscan's prefilter mode (a superset of its
    matches), the rule's index as its id: one pass over the text says which rules to run. Compiled
    once per process (~0.4 s of CPU, or loaded from telemetry_pipeline.cache), when a `Redactor` is built
    rather than on the first scan."""
    patterns = loose_patterns()
    flags = [hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
             | (hyperscan.HS_FLAG_CASELESS if caseless else 0) for _, caseless in patterns]
    return compile_database([pattern for pattern, _ in patterns], flags)


def _find_service_tokens(text: str) -> list[Finding]:
    """Only the rules whose prefilter pattern matched somewhere in the text are run."""
    wanted: set[int] = set()

    def collect(rule: int, _start: int, _end: int, _flags: int, _context: None) -> None:
        wanted.add(rule)

    rule_database().scan(text.encode(), match_event_handler=collect)
    findings: list[Finding] = []
    for index in sorted(wanted):
        rule = RULES[index]
        for match in rule.pattern.finditer(text):
            span = confirmed(rule, match)
            if span is not None:
                findings.append(Finding(Detector.SERVICE_TOKEN, *span))
    if len(findings) > 1:
        findings = _merge(findings, [])
    return findings


def _find_national_ids(text: str, national_ids: NationalIds) -> list[Finding]:
    """A second pass: identifier shapes overlap each other and the card, phone and SSN shapes, so
    at each candidate every family of the regions is tried; a rejected candidate's inside is read
    again ("20241 130-692-544"). Only where an identifier may start (ID_STARTS) is the shapes'
    alternation tried: searching for it at every character costs ten times more."""
    at_digit, at_letter = national_ids.at_digit, national_ids.at_letter
    findings: list[Finding] = []
    position = 0
    for start_match in ID_STARTS.finditer(text):
        start = start_match.start()
        candidate = at_digit if start_match.group().isdigit() else at_letter
        if start < position or candidate is None or candidate.match(text, start) is None:
            continue
        confirmed = national_ids.confirm(text, start)
        if confirmed is not None:
            findings.append(Finding(Detector.NATIONAL_ID, start, confirmed[0]))
            position = confirmed[0]
    return findings


def _merge(first: list[Finding], second: list[Finding]) -> list[Finding]:
    """Both lists' findings, left to right, without overlaps: the earlier start (then the longer) wins."""
    merged: list[Finding] = []
    # On the same span a named detector wins over the generic "secret word = value" one.
    ranked = sorted(
        first + second, key=lambda item: (item.start, -item.end, item.detector is Detector.GENERIC_SECRET)
    )
    for finding in ranked:
        if not merged or finding.start >= merged[-1].end:
            merged.append(finding)
    return merged


def _confirm(match: re.Match[str]) -> Finding | None:
    name = match.lastgroup
    assert name is not None
    detector = Detector(name)
    start, end = match.span()
    if detector is Detector.GENERIC_SECRET:
        return _confirm_generic(match)
    if detector in (Detector.BEARER, Detector.BASIC_AUTH, Detector.AWS_SECRET_KEY):
        group = f"{name}_v"
        value = match.group(group)
        if (detector is Detector.BEARER and not _bearer(value)) or (
            detector is Detector.BASIC_AUTH and not _basic(value)
        ):
            return None
        start, end = match.span(group)
        if detector is Detector.BEARER:
            end = value_end(match.string, start, end)
        return Finding(detector, start, end)
    if detector is Detector.IBAN:
        length = _iban_length(match.group())
        return Finding(detector, start, start + length) if length else None
    validator = _VALIDATORS.get(detector)
    if validator is not None and not validator(match.group()):
        return None
    return Finding(detector, start, end)


def _confirm_generic(match: re.Match[str]) -> Finding | None:
    text = match.string
    start, token_end = match.span("generic_secret_v")
    end = value_end(text, start, token_end)
    keyword = match.group("generic_secret_k")
    in_query = _in_query_string(text, match.start())
    # A secret by name (password=, ?token=) is judged whole; after other words the value is judged
    # by its token (the [\w.=+/~-] run), so "api:jar:1.7.8" is no secret. Either is masked whole.
    by_name = in_query or keyword.lower().startswith(_PASSWORD_WORDS)
    value = text[start:end] if by_name else text[start:token_end]
    if not _generic(keyword, value, in_query):
        return None
    detector = Detector.GENERIC_SECRET
    # Name the value when it is a known token; a token-shaped placeholder ("xoxp-1234567890")
    # that fails that token's own check is not a secret either.
    named = _TOKEN_NAMER.fullmatch(value)
    if named is not None and named.lastgroup is not None:
        detector = Detector(named.lastgroup)
    elif value.startswith("eyJ") and "." in value:
        detector = Detector.JWT
    validator = _VALIDATORS.get(detector)
    if validator is not None and not validator(value):
        return None
    return Finding(detector, start, end)


_QUOTES = "'\"`"
# An unquoted value ends at whitespace, a quote, & (form bodies, query strings), ; (cookies) or
# an angle bracket (markup).
_UNQUOTED_END = re.compile(r"[\s&;'\"`<>]")
# Longer quoted values are not searched for their closing quote: the unquoted rule applies.
_MAX_QUOTED = 4096


def value_end(text: str, start: int, end: int) -> int:
    """Where the secret value found at text[start:end] really ends: at its closing quote when a
    quote opens it (an escaped one, \\", when the text is JSON inside a string), else at its
    delimiter. The detectors' value classes stop at the first unusual character, and
    "hunter2!x" must not leave "!x" beside the marker."""
    opening = text[start - 1] if start else ""
    if opening and opening in _QUOTES:
        escaped = start >= 2 and text[start - 2] == "\\"
        position = start
        limit = min(len(text), start + _MAX_QUOTED)
        while True:
            position = text.find(opening, position, limit)
            if position == -1:
                break
            backslash = text[position - 1] == "\\"
            if escaped and backslash:
                return max(end, position - 1)
            if not escaped and not backslash:
                return max(end, position)
            position += 1
    delimiter = _UNQUOTED_END.search(text, end)
    return delimiter.start() if delimiter is not None else len(text)
