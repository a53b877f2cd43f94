"""Fake but well-formed PII and secrets, and where a careless service would leak them.

Values are valid where validity is checkable (Luhn for cards, mod-97 for IBANs, SSN area rules, JWT
structure), so detectors that verify checksums are exercised too. Domains and phone numbers use
ranges reserved for examples where such ranges exist.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import orjson

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_FIRST = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "iris", "jonas", "kim", "leo")
_LAST = ("meyer", "smith", "garcia", "rossi", "novak", "silva", "jensen", "kowalski", "dubois", "tanaka")
_DOMAINS = ("example.com", "example.org", "mail.example.net")


def _chars(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choices(alphabet, k=count))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def email(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(100)}@{rng.choice(_DOMAINS)}"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 0:  # doubled: these are every other digit counting from the check digit
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def card_number(rng: random.Random) -> str:
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)))
    body = prefix + _chars(rng, string.digits, length - len(prefix) - 1)
    number = body + luhn_check_digit(body)
    separator = rng.choice(("", " ", "-"))
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


def iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        (
            ("DE", _chars(rng, string.digits, 18)),
            ("GB", "NWBK" + _chars(rng, string.digits, 14)),
            ("FR", _chars(rng, string.digits, 23)),
        )
    )
    # ISO 13616: move the country code and "00" behind the BBAN, letters to numbers, 98 - mod 97.
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def phone(rng: random.Random) -> str:
    return rng.choice(
        (
            f"+1 202 555 01{rng.randrange(100):02d}",  # 555-01xx: reserved for fiction
            f"+44 20 7946 0{rng.randrange(1000):03d}",  # Ofcom drama range
            f"+49 30 {rng.randrange(10_000_000, 99_999_999)}",
        )
    )


def ipv4(rng: random.Random) -> str:
    return f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.getrandbits(16):x}" for _ in range(6)]
    return "2001:db8:" + ":".join(groups)


def jwt(rng: random.Random) -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    claims = _b64url(
        orjson.dumps({"sub": f"user-{rng.getrandbits(40):010x}", "iat": 1767225600, "scope": "orders:write"})
    )
    return f"{header}.{claims}.{_b64url(rng.randbytes(32))}"


def bearer_token(rng: random.Random) -> str:
    return "Bearer " + _chars(rng, _ALNUM + "-_", 40)


def aws_access_key(rng: random.Random) -> str:
    return "AKIA" + _chars(rng, _UPPER_ALNUM, 16)


def github_token(rng: random.Random) -> str:
    return "ghp_" + _chars(rng, _ALNUM, 36)


def url_with_credentials(rng: random.Random) -> str:
    user = rng.choice(("admin", "svc_orders", "deploy"))
    return f"https://{user}:{_chars(rng, _ALNUM, 12)}@db.internal.example.com:5432/orders"


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10_000):04d}"


@dataclass(frozen=True)
class Leak:
    """One kind of sensitive value and where it ends up: a span attribute and a log body text."""

    kind: str
    make: Callable[[random.Random], str]
    attribute: str
    attribute_text: str  # "{}" is replaced by the value
    log_text: str
    header: bool = False  # http.request.header.* attributes are string arrays in the conventions


LEAKS: tuple[Leak, ...] = (
    Leak("email", email, "app.customer.email", "{}", "password reset link sent to {}"),
    Leak(
        "email",
        email,
        "db.query.text",
        "SELECT id FROM customers WHERE email = '{}'",
        "no account found for {}",
    ),
    Leak("card", card_number, "app.payment.card_number", "{}", "charge declined for card {}"),
    Leak("iban", iban, "app.payout.iban", "{}", "refund scheduled to IBAN {}"),
    Leak("phone", phone, "app.customer.phone", "{}", "SMS verification code sent to {}"),
    Leak(
        "ipv4", ipv4, "http.request.header.x-forwarded-for", "{}", "rate limit exceeded for {}", header=True
    ),
    Leak("ipv6", ipv6, "app.origin.address", "{}", "blocked login attempt from {}"),
    Leak("jwt", jwt, "app.session.token", "{}", "token refresh failed for {}"),
    Leak(
        "bearer", bearer_token, "http.request.header.authorization", "{}", "upstream rejected {}", header=True
    ),
    Leak(
        "aws_key",
        aws_access_key,
        "app.config.aws_access_key_id",
        "{}",
        "loaded credentials aws_access_key_id={} from environment",
    ),
    Leak("github_token", github_token, "app.ci.token", "{}", "cloning with token {}"),
    Leak("url_credentials", url_with_credentials, "url.full", "{}", "connecting to {}"),
    Leak("ssn", ssn, "app.customer.ssn", "{}", "identity check for SSN {}"),
)
