"""Tokens and keys of named services (detector `service_token`), as rules built at import time.

No rule table is kept here by hand. The rules come from:
- detect-secrets (Yelp, Apache-2.0), a maintained library: the `denylist` regexes of those of its
  plugins whose regex is a concrete token format (DETECT_SECRETS_PLUGINS). Its entropy-only and
  keyword-only plugins are left out (the generic secret detector covers those), and so are the
  plugins our own detectors cover (AWS, GitHub, Slack, Stripe, JWT, private keys, URL credentials,
  IP addresses);
- our own rules (OWN_RULES), each written from the provider's published token format (named
  beside it), where detect-secrets has none or a narrower one.

A rule is either a token standing alone (its regex may not start inside a longer word) or a name
assigned a value (the plugin's regex holds the name; its first group is the value). A candidate
counts when its secret is no placeholder, reaches the minimum entropy and, where the format has
digits, holds one (what separates a token from a word or an identifier). The secret is masked up
to the end of its run of token characters: a regex that stops early must not leave a tail beside
the marker. Patterns use re.ASCII, as Hyperscan does, so its prefilter pass (each rule's own regex)
finds a superset of what the rule matches.
"""

from __future__ import annotations

import importlib
import math
import re
from collections import Counter

MIN_ENTROPY = 3.0  # bits per character: a random token of 16+ characters reaches ~3.5, fillers do not
_DIGIT_CLASS = re.compile(r"\\d|0-9|\[[^\]]*\d")  # a pattern whose format allows digits
_DELIMITERS = re.compile(r"[\s'\"`;,&<>]")  # never inside a token: a greedy `.+` is cut here
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# A group-less match may start with its context: a delimiter, or a name and '=' ("AccountKey=").
_LEADING_CONTEXT = re.compile(r"[\s=:\"']*(?:[A-Za-z]+=)?")


class Rule:
    """One rule: `id` (family-name), the compiled pattern, and whether the secret must hold a digit."""

    __slots__ = ("id", "needs_digit", "pattern")

    def __init__(self, rule_id: str, regex: str, flags: int = 0, alone: bool = True) -> None:
        self.id = rule_id
        if alone:
            regex = rf"(?<![A-Za-z0-9])(?:{regex})"
        self.pattern = re.compile(regex, re.ASCII | (flags & re.IGNORECASE))
        self.needs_digit = _DIGIT_CLASS.search(regex.replace("(?<![A-Za-z0-9])", "")) is not None

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]


# detect-secrets plugin (module.class) -> (family, whether its tokens stand alone). Plugins whose
# regex names the value ("cloudant_password = ...", "AccountKey=...") or brings its own delimiters
# (Artifactory) are not "alone".
DETECT_SECRETS_PLUGINS: dict[str, tuple[str, bool]] = {
    "artifactory.ArtifactoryDetector": ("artifactory", False),
    "azure_storage_key.AzureStorageKeyDetector": ("azure", False),
    "cloudant.CloudantDetector": ("cloudant", False),
    "discord.DiscordBotTokenDetector": ("discord", True),
    "gitlab_token.GitLabTokenDetector": ("gitlab", True),
    "ibm_cloud_iam.IbmCloudIamDetector": ("ibm", False),
    "ibm_cos_hmac.IbmCosHmacDetector": ("ibm", False),
    "mailchimp.MailchimpDetector": ("mailchimp", True),
    "npm.NpmDetector": ("npm", False),
    "openai.OpenAIDetector": ("openai", True),
    "pypi_token.PypiTokenDetector": ("pypi", True),
    "sendgrid.SendGridDetector": ("sendgrid", True),
    "softlayer.SoftlayerDetector": ("softlayer", False),
    "square_oauth.SquareOAuthDetector": ("square", True),
    "telegram_token.TelegramBotTokenDetector": ("telegram", True),
    "twilio.TwilioKeyDetector": ("twilio", True),
}

# Our own rules, from each provider's documented format.
OWN_RULES: tuple[Rule, ...] = (
    # PyPI API tokens: "pypi-" and a base64url macaroon, whose serialisation starts "AgE" (version 2,
    # then the location field); detect-secrets wants 70+ characters after pypi.org's location.
    # https://pypi.org/help/#apitoken, https://warehouse.pypa.io/development/token-scanning.html
    Rule("pypi-api-token", r"pypi-AgE[A-Za-z0-9_-]{50,}"),
    # npm tokens since 2021: "npm_", 30 base62 characters and a 6-character CRC32 (detect-secrets
    # finds them only in an .npmrc line). GitHub changelog 2021-09-23, "npm has a new access token format".
    Rule("npm-access-token", r"npm_[A-Za-z0-9]{36}"),
    # Twilio SIDs: two letters and 32 hex digits, "SK" for API keys (detect-secrets: lower case only).
    # https://www.twilio.com/docs/iam/api-keys
    Rule("twilio-api-key", r"SK[0-9a-fA-F]{32}"),
)


def _detect_secrets_rules() -> tuple[Rule, ...]:
    rules = []
    for path, (family, alone) in DETECT_SECRETS_PLUGINS.items():
        module, name = path.rsplit(".", 1)
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        for number, pattern in enumerate(plugin.denylist):
            rules.append(Rule(f"{family}-{name}-{number}", pattern.pattern, pattern.flags, alone))
    return tuple(rules)


RULES: tuple[Rule, ...] = _detect_secrets_rules() + OWN_RULES

# Constants and template variables that stand where a secret would be.
_PLACEHOLDER_WORDS = frozenset({"true", "false", "null", "none", "nil", "undefined", "redacted"})
_TEMPLATE = re.compile(
    r"\$\{.*\}|\{\{.*\}\}|\$(?:\d+|\{\d+\}|[A-Z_]+|[a-z_]+)|%(?:[A-Z_]+|[a-z_]+)%|<[^>]*>|\[redacted[^\]]*\]",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """A constant, a template variable, one character repeated, or the alphabet typed out."""
    lowered = value.lower()
    return (
        lowered in _PLACEHOLDER_WORDS
        or len(set(value)) == 1
        or _TEMPLATE.fullmatch(value) is not None
        or "abcdefghijklmnopqrstuvwxyz" in lowered
    )


def shannon_entropy(text: str) -> float:
    length = len(text)
    return -sum(count / length * math.log2(count / length) for count in Counter(text).values())


def confirmed(rule: Rule, match: re.Match[str]) -> tuple[int, int] | None:
    """The secret's span in a match of `rule`, grown to the end of its token, when it is a secret."""
    text = match.string
    start, end = next((match.span(group) for group in range(1, (match.re.groups or 0) + 1)
                       if match.start(group) != -1), match.span())
    if match.re.groups == 0:
        start = _LEADING_CONTEXT.match(text, start, end).end()  # type: ignore[union-attr]
    delimiter = _DELIMITERS.search(text, start, end)
    if delimiter is not None:
        end = delimiter.start()
    while end < len(text) and text[end] in _TOKEN_CHARS:
        end += 1
    secret = text[start:end]
    if not secret or is_placeholder(secret) or shannon_entropy(secret) < MIN_ENTROPY:
        return None
    if rule.needs_digit and not any(char.isdigit() for char in secret):
        return None
    return start, end


def _unanchored(regex: str) -> str:
    """`regex` without \\b, ^ and $: in a serialized message the bytes around a string are field
    tags and lengths, so an anchor that holds in the string may fail there (a wider match)."""
    out: list[str] = []
    position = 0
    in_class = False
    while position < len(regex):
        char = regex[position]
        if char == "\\":
            pair = regex[position:position + 2]
            if in_class or pair not in ("\\b", "\\B"):
                out.append(pair)
            position += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            position += 1
            for literal in "^]":  # a leading ^ negates; a ] right after [ (or [^) is a literal
                if regex[position:position + 1] == literal:
                    out.append(literal)
                    position += 1
            continue
        elif char in "^$":
            position += 1
            continue
        out.append(char)
        position += 1
    return "".join(out)


def loose_patterns() -> list[tuple[bytes, bool]]:
    """Each rule's regex for Hyperscan's prefilter mode (a superset of its matches, lookarounds
    included), and whether it is caseless."""
    return [
        (_unanchored(rule.pattern.pattern).encode(), bool(rule.pattern.flags & re.IGNORECASE))
        for rule in RULES
    ]
