from __future__ import annotations

import pytest

from telemetry_pipeline.redaction.detectors import Detector, find, iban_valid, luhn_valid, shannon_entropy


def _found(text: str) -> list[tuple[str, str]]:
    return [(finding.detector.value, text[finding.start:finding.end]) for finding in find(text)]


@pytest.mark.parametrize(
    "text",
    [
        "4bf92f3577b34da6a3ce929d0e0e4736",  # trace id
        "00f067aa0ba902b7",  # span id
        "550e8400-e29b-41d4-a716-446655440000",  # UUID
        "2026-11-27T02:40:08.123456Z",  # ISO timestamp
        "2026-11-27 02:40:08+01:00",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",  # commit
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # digest
        "4012888888881882",  # 16 digits, Luhn fails
        "4012-8888-8888-1882",
        "1767225600123",  # epoch ms, 13 digits starting with 1
        "1767225600123456789",  # epoch ns
        "DE89370400440532013001",  # IBAN shape, mod-97 fails
        "078-05-1120",  # the Woolworth SSN, never issued
        "000-12-3456",
        "666-12-3456",
        "912-12-3456",
        "123-00-4567",
        "123-45-0000",
        "12:34:56",  # a time, not IPv6
        "ff:ff:ff:ff:ff:ff",  # the broadcast MAC address names no device
        "std::vector",
        "v1.2.3",
        "192.168.1.256",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0",
        "GET /api/products/{id}",
        "account 0051 8630 0016 7",  # digit groups, not a phone number
        "SELECT id, name FROM products WHERE id = $1",
        "token_count=12",
        "key_length = 256",
        "ghp_short",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",  # placeholder
        "AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        # Epoch times in ms and ns, some of which pass Luhn (1767225600008, 1767225600123456784).
        "1767225600008",
        "ts=1767225600123 done",
        "1767225600123456784",
        "start_time_unix_nano=1781234567890123456",
        "1700000000",  # epoch seconds
        # Image digests, ISBNs, amounts, order ids, traceparent values.
        "ghcr.io/acme/api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "ISBN 978-3-16-148410-0",
        "9783161484100",
        "total EUR 1,234,567.89",
        "amount=4711.50 USD",
        "ORD-2026-000123",
        "order_id=7f3a9c2e",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        # Measurements: a bare number with a unit or named as a quantity is no identifier.
        "took 876543210 ns",
        "bytes=876543210",
        '"offset": "121000358"',
        "0123456789",
        # The secret words with no value after them.
        "password",
        "token",
        "secret",
        "password reset requested",
        "invalid token for user",
        "secret rotated",
        "password: true",
    ],
)
def test_structural_values_and_checksum_failures_are_left_alone(text: str) -> None:
    assert _found(text) == []


@pytest.mark.parametrize(
    ("text", "detector", "match"),
    [
        ("mail anna.meyer42@example.com now", Detector.EMAIL, "anna.meyer42@example.com"),
        ("card 4012 8888 8888 1881 declined", Detector.CREDIT_CARD, "4012 8888 8888 1881"),
        ("card 371449635398431", Detector.CREDIT_CARD, "371449635398431"),
        ("to GB82 WEST 1234 5698 7654 32.", Detector.IBAN, "GB82 WEST 1234 5698 7654 32"),
        ("iban DE89370400440532013000", Detector.IBAN, "DE89370400440532013000"),
        ("ssn 078-05-1123", Detector.US_SSN, "078-05-1123"),
        ("call +44 20 7946 0123", Detector.PHONE, "+44 20 7946 0123"),
        ("call (415) 555-0132", Detector.PHONE, "(415) 555-0132"),
        ("Tel. 020 7946 0123", Detector.PHONE, "020 7946 0123"),
        ("from 203.0.113.7:443", Detector.IPV4, "203.0.113.7"),
        ("GET http://10.1.2.3/health", Detector.IPV4, "10.1.2.3"),
        ("from 2001:db8::8a2e:370:7334", Detector.IPV6, "2001:db8::8a2e:370:7334"),
        ("from [fe80::1%eth0]:80", Detector.IPV6, "fe80::1%eth0"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2J5dGVz",
            Detector.JWT,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2J5dGVz",
        ),
        ("Authorization: Bearer a1B2c3D4e5F6g7H8i9J0", Detector.BEARER, "a1B2c3D4e5F6g7H8i9J0"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", Detector.BASIC_AUTH, "dXNlcjpwYXNzd29yZA=="),
        ("postgres://svc:hunter22@db:5432/x", Detector.URL_CREDENTIALS, "svc:hunter22"),
        ("GET /x?X-Amz-Signature=8f3a9c2b1d0e7f6a5b4c", Detector.GENERIC_SECRET, "8f3a9c2b1d0e7f6a5b4c"),
        ("password=hunter2x", Detector.GENERIC_SECRET, "hunter2x"),
        ("/cb?state=x&access_token=abc&n=1", Detector.GENERIC_SECRET, "abc"),  # short, but a query secret
        ("nic aa:bb:cc:0d:ee:f1 up", Detector.MAC_ADDRESS, "aa:bb:cc:0d:ee:f1"),
        ("wallet bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", Detector.CRYPTO_WALLET,
         "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
        ("hetu 131052-308T ok", Detector.NATIONAL_ID, "131052-308T"),
        ("nino: PR 123612C", Detector.NATIONAL_ID, "PR 123612C"),
        ("Steuer-ID 12345678903.", Detector.NATIONAL_ID, "12345678903"),
        ("key AKIAZZGBMZ11VC10KS7Q", Detector.AWS_ACCESS_KEY, "AKIAZZGBMZ11VC10KS7Q"),
        ("ghp_gn3qg6UOcdEZ5EyscioeZIiDWnqO7pDcwi9I", Detector.GITHUB_TOKEN, None),
        ("glpat-Xk3v9QzR2mT8wP4nL6yB", Detector.GITLAB_TOKEN, None),
        ("xoxb-263594206564-FGqddMF8t08v8N7Oq4i57vs1", Detector.SLACK_TOKEN, None),
        ("sk_live_ReTllpYQYfIZu2Jnf2lAPFjD", Detector.STRIPE_KEY, None),
        ("AIzaSyNHxIf32IQ1a1yjl3ZJIqKZqzLAK1XhDk-", Detector.GOOGLE_API_KEY, None),
        # A vendor token after a secret word keeps its own name.
        (
            "api_token=ghp_gn3qg6UOcdEZ5EyscioeZIiDWnqO7pDcwi9I",
            Detector.GITHUB_TOKEN,
            "ghp_gn3qg6UOcdEZ5EyscioeZIiDWnqO7pDcwi9I"),
    ],
)
def test_detects(text: str, detector: Detector, match: str | None) -> None:
    """`match` None: the whole text."""
    assert _found(text) == [(detector.value, text if match is None else match)]


def test_private_key_block_is_found_whole_even_truncated() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDAC4AWkdwKYSd8Ks14IReLcYgADhoXk56ZzXI="
    block = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    assert _found(f"loaded {block} ok") == [("private_key", block)]
    truncated = f"-----BEGIN RSA PRIVATE KEY-----\n{body}"
    assert _found(truncated) == [("private_key", truncated)]


def test_a_rejected_candidate_does_not_hide_a_real_one() -> None:
    # A ZIP code and a phone number read together as a 15-digit card candidate that fails Luhn.
    assert _found("SD 20241 440-600-5124") == [("phone", "440-600-5124")]
    # "Bearer" is no token after "Authorization:", but what follows it is.
    assert _found("Authorization: Bearer a1B2c3D4e5F6g7H8i9J0") == [("bearer_token", "a1B2c3D4e5F6g7H8i9J0")]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"password": "hunter2 x!sJr", "user": "bob"}', "hunter2 x!sJr"),  # JSON: to the closing quote
        ('{\\"password\\": \\"pa!s s\\", \\"u\\": 1}', "pa!s s"),  # JSON inside a JSON string
        ("user=bob&password=abc!def%26x&next=/", "abc!def%26x"),  # form body: to the &
        ("GET /cb?access_token=ab!c;d&n=1", "ab!c"),  # query string: to the ;
        ("Cookie: sid=q8Zr!2k/=; theme=dark", "sid=q8Zr!2k/="),  # header: the cookie, to the ;
        ("db_password=s3cr3t!#x retries=3", "s3cr3t!#x"),  # key=value text: to the whitespace
        ("password: 'correct horse battery'", "correct horse battery"),
        ("Authorization: Bearer a1B2c3D4e5F6g7H8i9J0!xy rest", "a1B2c3D4e5F6g7H8i9J0!xy"),
    ],
)
def test_secret_values_are_redacted_whole(text: str, secret: str) -> None:
    found = find(text)
    assert [text[finding.start:finding.end] for finding in found] == [secret]


def test_placeholders_after_secret_words_are_not_secrets() -> None:
    assert _found('"token1": "xoxp-1234567890"') == []
    assert _found("password=****") == []  # a masked value already
    assert _found("api_key=placeholder") == []  # no digit, low entropy


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("XX82WEST12345698765432")  # unknown country
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0
