from __future__ import annotations

import re
from collections import Counter

import pytest

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.generate.tests.support import attribute_strings, logs, spans, strings
from telemetry_pipeline.otlp.attributes import get_str


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# Independent detectors, written from the formats rather than from the generator's code.
DETECTORS = {
    "email": lambda s: re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", s) is not None,
    "card": lambda s: any(
        _luhn_ok(m.replace(" ", "").replace("-", "")) for m in re.findall(r"\b\d(?:[ -]?\d){12,18}\b", s)
    ),
    "iban": lambda s: any(_iban_ok(m) for m in re.findall(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b", s)),
    "phone": lambda s: re.search(r"\+\d{1,3}(?: \d{2,4}){2,3}", s) is not None,
    "ipv4": lambda s: (
        re.search(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b", s) is not None
    ),
    "ipv6": lambda s: re.search(r"\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b", s) is not None,
    "jwt": lambda s: re.search(r"\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]+", s) is not None,
    "bearer": lambda s: re.search(r"\bBearer [\w-]{20,}", s) is not None,
    "aws_key": lambda s: re.search(r"\bAKIA[0-9A-Z]{16}\b", s) is not None,
    "github_token": lambda s: re.search(r"\bghp_[A-Za-z0-9]{36}\b", s) is not None,
    "url_credentials": lambda s: re.search(r"://[^/\s:@]+:[^/\s@]+@", s) is not None,
    "ssn": lambda s: re.search(r"\b(?!666)\d{3}-\d{2}-\d{4}\b", s) is not None,
}
# Personal by design on every root span; the injected leaks are counted on top of them. User agents
# such as "Chrome/131.0.0.0" look like IPv4 addresses to a plain detector (a false positive on purpose).
BY_DESIGN = frozenset({"client.address", "enduser.id", "user_agent.original"})


def _kinds(texts: list[str]) -> set[str]:
    return {kind for kind, detect in DETECTORS.items() if any(detect(t) for t in texts)}


@pytest.mark.parametrize("share", [0.0, 0.05, 0.2])
def test_the_share_of_records_with_pii_follows_the_setting(share: float) -> None:
    messages = list(iter_messages(GeneratorConfig(duration="60s", rate=40, pii_share=share, seed=7)))
    span_hits = span_total = 0
    kinds: Counter[str] = Counter()
    for record in spans(messages):
        found = _kinds(list(attribute_strings(record.span.attributes, BY_DESIGN)))
        span_total += 1
        span_hits += bool(found)
        kinds.update(found)
    log_hits = log_total = 0
    for entry in logs(messages):
        found = _kinds([*strings(entry.record.body), *attribute_strings(entry.record.attributes)])
        log_total += 1
        log_hits += bool(found)
        kinds.update(found)
    assert abs(span_hits / span_total - share) < 0.01
    assert abs(log_hits / log_total - share) < 0.02
    if share:
        assert set(kinds) == set(DETECTORS)  # every kind of leak occurs


def test_every_root_carries_a_client_address() -> None:
    roots = [r for r in spans(iter_messages(GeneratorConfig(duration="20s"))) if not r.span.parent_span_id]
    assert roots and all(DETECTORS["ipv4"](get_str(r.span.attributes, "client.address")) for r in roots)
