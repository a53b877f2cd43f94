"""Tokens and keys of named services (detector `service_token`), as rules built at import time.

No rule table is kept here by hand. The rules come from:
- detect-secrets (Yelp, Apache-2.0), a maintained library: the `denylist` regexes of those of its
  plugins whose regex is a concrete token format (DETECT_SECRETS_PLUGINS). Its entropy-only and
  keyword-only plugins are left out (the generic secret detector covers those), and so are the
  plugins our own detectors cover (AWS, GitHub, Slack, Stripe, JWT, private keys, URL credentials,
  IP addresses);
- our own rules (OWN_RULES), each written by us from the provider's own published token format
  (its page named beside it), where detect-secrets has none or a narrower one;
- gitleaks (MIT), its maintained default rule set vendored whole in gitleaks/ (SOURCE.md names the
  commit): the rules whose secret is told by what stands before it, not by a format of its own
  ("adafruit_api_key = <32 characters>", a curl command's Authorization header), loaded from that
  file at import (_gitleaks_keyword_rules). No scanner's rule text is copied into this file.

A rule is either a token standing alone (its regex may not start inside a longer word) or a name
assigned a value (the plugin's regex holds the name; its first group is the value). A candidate
counts when its secret is no placeholder, reaches the minimum entropy, where the format has
digits holds one (what separates a token from a word or an identifier), and where the format has
a checksum passes it (age keys: Bech32). The secret is masked up
to the end of its run of token characters: a regex that stops early must not leave a tail beside
the marker. Patterns use re.ASCII, as Hyperscan does, so its prefilter pass (each rule's own regex)
finds a superset of what the rule matches.
"""

from __future__ import annotations

import importlib
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from importlib import resources

MIN_ENTROPY = 3.0  # bits per character: a random token of 16+ characters reaches ~3.5, fillers do not
_DIGIT_CLASS = re.compile(r"\\d|0-9|\[[^\]]*\d")  # a pattern whose format allows digits
_DELIMITERS = re.compile(r"[\s'\"`;,&<>]")  # never inside a token: a greedy `.+` is cut here
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# A group-less match may start with its context: a delimiter, or a name and '=' ("AccountKey=").
_LEADING_CONTEXT = re.compile(r"[\s=:\"']*(?:[A-Za-z]+=)?")


class Rule:
    """One rule: `id` (family-name), the compiled pattern, whether the secret must hold a digit (by
    default where the format allows digits), the
    format's own check (a checksum) where it has one, the least entropy its secret has, and where
    the secret is: with `exact`, the group that took part ending last (the longest of those), as it
    is (a regex that delimits its secret itself); else the first, grown to the end of its token.
    `loose`: its pattern for Hyperscan's prefilter when not the regex itself; `context`: a pattern
    the whole text must hold as well (a Kubernetes Secret's `kind: Secret`); `not_named`: a pattern
    which, in the match before the secret, makes it none (`datadog.git.commit.sha=<40 hex>`)."""

    __slots__ = (
        "check", "context", "exact", "id", "loose", "min_entropy", "needs_digit", "not_named", "pattern",
    )

    def __init__(
        self, rule_id: str, regex: str, flags: int = 0, alone: bool = True,
        check: Callable[[str], bool] | None = None, exact: bool = False,
        min_entropy: float = MIN_ENTROPY, loose: str | None = None, needs_digit: bool | None = None,
        context: str | None = None, not_named: str | None = None,
    ) -> None:
        self.id = rule_id
        if alone:
            regex = rf"(?<![A-Za-z0-9])(?:{regex})"
        self.pattern = re.compile(regex, re.ASCII | (flags & re.IGNORECASE))
        if needs_digit is None:
            needs_digit = _DIGIT_CLASS.search(regex.replace("(?<![A-Za-z0-9])", "")) is not None
        self.needs_digit = needs_digit
        self.check = check
        self.exact = exact
        self.min_entropy = min_entropy
        self.loose = loose
        self.context = re.compile(context, re.ASCII) if context is not None else None
        self.not_named = None if not_named is None else re.compile(not_named, re.ASCII | re.IGNORECASE)

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

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def bech32_polymod(hrp: str, data: list[int]) -> int:
    """Bech32's checksum function (BIP 173: a BCH code over the human-readable part and the 5-bit
    data values); a valid string's is 1."""
    values = [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp] + data
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if top >> bit & 1:
                checksum ^= generator
    return checksum


def bech32_valid(text: str) -> bool:
    """Whether `text` (any case) is Bech32 with a valid checksum."""
    hrp, separator, data = text.lower().rpartition("1")
    if not separator or len(data) < 6 or any(char not in BECH32_CHARSET for char in data):
        return False
    return bech32_polymod(hrp, [BECH32_CHARSET.index(char) for char in data]) == 1


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID = "[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}"  # a UUID's shape

# Our own rules, each written from the provider's own published token format (the page named
# beside it): a distinctive prefix or structure, so that words and identifiers do not match.
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
    # -- AI and ML platforms
    # Anthropic API and Admin API keys: "sk-ant-api03-" / "sk-ant-admin01-" and a long base64url body.
    # https://docs.anthropic.com/en/api/admin-api
    Rule("anthropic-api-key", r"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}"),
    # Hugging Face user access tokens "hf_" (34 letters); legacy organisation tokens "api_org_".
    # https://huggingface.co/docs/hub/security-tokens
    Rule("huggingface-access-token", r"hf_[A-Za-z]{34}"),
    Rule("huggingface-org-token", r"api_org_[A-Za-z]{34}"),
    # Replicate API tokens: "r8_" and 37 characters. https://replicate.com/docs/topics/security/api-tokens
    Rule("replicate-api-token", r"r8_[A-Za-z0-9]{37}"),
    # Groq API keys: "gsk_" and 52 characters. https://console.groq.com/docs/quickstart
    Rule("groq-api-key", r"gsk_[A-Za-z0-9]{52}"),
    # Perplexity API keys: "pplx-" and 48 characters. https://docs.perplexity.ai/guides/getting-started
    Rule("perplexity-api-key", r"pplx-[A-Za-z0-9]{48}"),
    # xAI API keys: "xai-" and 80 characters. https://docs.x.ai/docs/overview
    Rule("xai-api-key", r"xai-[A-Za-z0-9]{80}"),
    # OpenRouter API keys: "sk-or-v1-" and 64 hex digits. https://openrouter.ai/docs/api-reference/authentication
    Rule("openrouter-api-key", r"sk-or-v1-[0-9a-f]{64}"),
    # LangSmith personal tokens and service keys: "lsv2_pt_" / "lsv2_sk_", 32 hex, "_", 10 hex.
    # https://docs.smith.langchain.com/administration/how_to_guides/organization_management/create_account_api_key
    Rule("langsmith-api-key", r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}"),
    # Langfuse secret keys: "sk-lf-" and a UUID. https://langfuse.com/docs/api-and-data-platform/overview
    Rule("langfuse-secret-key", rf"sk-lf-{_UUID}"),
    # Pinecone API keys since 2024: "pcsk_", a key id, "_" and the secret.
    # https://docs.pinecone.io/guides/projects/manage-api-keys
    Rule("pinecone-api-key", r"pcsk_[A-Za-z0-9]{4,10}_[A-Za-z0-9]{40,}"),
    # -- Observability vendors (the keys exporters and agents carry)
    # New Relic: user keys "NRAK-" and 27 characters, Insights insert keys "NRII-", and license
    # (ingest) keys of 40 characters ending "NRAL". https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/
    Rule("newrelic-user-key", r"NRAK-[A-Za-z0-9]{27}"),
    Rule("newrelic-insert-key", r"NRII-[A-Za-z0-9_-]{32}"),
    Rule("newrelic-license-key", r"[0-9a-fA-F]{36}NRAL"),
    # Dynatrace tokens: prefix ("dt0c01"), a 24-character public part and a 64-character secret,
    # dot-separated. https://docs.dynatrace.com/docs/manage/identity-access-management/access-tokens-and-oauth-clients/access-tokens
    Rule("dynatrace-token", r"dt0[a-z][0-9]{2}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}"),
    # Grafana Cloud access policy tokens "glc_" (base64 JSON) and service account tokens
    # "glsa_", 32 characters, "_", 8 hex. https://grafana.com/docs/grafana/latest/administration/service-accounts/
    Rule("grafana-cloud-token", r"glc_[A-Za-z0-9+/_-]{32,}={0,2}"),
    Rule("grafana-service-account-token", r"glsa_[A-Za-z0-9]{32}_[0-9a-fA-F]{8}"),
    # Sentry organisation tokens "sntrys_" (base64 JSON, "_", secret) and user tokens "sntryu_"
    # (64 hex). https://docs.sentry.io/account/auth-tokens/
    Rule("sentry-org-token", r"sntrys_eyJ[A-Za-z0-9+/=]{40,}_[A-Za-z0-9+/]{43}"),
    Rule("sentry-user-token", r"sntryu_[0-9a-f]{64}"),
    # Honeycomb API keys: "hc" + key type ("hcaik_", "hcxik_", ...), the key id and its secret
    # concatenated (58 characters). https://docs.honeycomb.io/api/key-management/create-an-api-key
    Rule("honeycomb-api-key", r"hc[a-z]{2}k_[A-Za-z0-9]{58}"),
    # Axiom API tokens "xaat-" and personal tokens "xapt-", then a UUID. https://axiom.co/docs/reference/tokens
    Rule("axiom-token", rf"xa[ap]t-{_UUID}"),
    # PostHog personal API keys: "phx_" and 43 characters. https://posthog.com/docs/api
    Rule("posthog-personal-key", r"phx_[A-Za-z0-9]{43}"),
    # -- Infrastructure, CI and package registries
    # HashiCorp Vault tokens: "hvs." (service), "hvb." (batch), "hvr." (recovery).
    # https://developer.hashicorp.com/vault/docs/concepts/tokens#token-prefixes
    # Before Vault 1.10, service tokens were "s." and 24 characters.
    Rule("vault-token", r"hv[sbr]\.[A-Za-z0-9_-]{24,}|(?<![\w.])s\.[A-Za-z0-9]{24}(?![\w.])"),
    # HCP Terraform (Terraform Cloud) API tokens: 14 characters, ".atlasv1.", the secret.
    # https://developer.hashicorp.com/terraform/cloud-docs/users-teams-organizations/api-tokens
    Rule("terraform-api-token", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}"),
    # Pulumi access tokens: "pul-" and 40 hex digits.
    # https://www.pulumi.com/docs/pulumi-cloud/access-management/access-tokens/
    Rule("pulumi-access-token", r"pul-[0-9a-f]{40}"),
    # Doppler tokens: "dp." + type (pt personal, st service, ct CLI, sa service account, scim, audit) + ".".
    # https://docs.doppler.com/reference/auth-token-formats
    Rule("doppler-token", r"dp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,44}"),
    # DigitalOcean personal ("dop_v1_"), OAuth ("doo_v1_") and refresh ("dor_v1_") tokens, 64 hex.
    # https://docs.digitalocean.com/reference/api/create-personal-access-token/
    Rule("digitalocean-token", r"do[opr]_v1_[0-9a-f]{64}"),
    # Databricks personal access tokens: "dapi" and 32 hex digits (a "-2"-style suffix on Azure).
    # https://docs.databricks.com/en/dev-tools/auth/pat.html
    Rule("databricks-token", r"dapi[0-9a-f]{32}(?:-[0-9]+)?"),
    # PlanetScale service tokens, database passwords and OAuth tokens.
    # https://planetscale.com/docs/concepts/service-tokens, https://planetscale.com/docs/concepts/connection-strings
    Rule("planetscale-token", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.=-]{32,64}"),
    # Docker Hub personal ("dckr_pat_") and organisation ("dckr_oat_") access tokens.
    # https://docs.docker.com/security/for-developers/access-tokens/
    Rule("docker-access-token", r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}"),
    # Buildkite API access tokens: "bkua_" and 40 hex digits. https://buildkite.com/docs/apis/managing-api-tokens
    Rule("buildkite-api-token", r"bkua_[0-9a-f]{40}"),
    # CircleCI personal and project API tokens: "CCIPAT_" / "CCIPRJ_", 22 characters, "_", 40 hex.
    # https://circleci.com/docs/managing-api-tokens/
    Rule("circleci-api-token", r"CCIP(?:AT|RJ)_[A-Za-z0-9]{22}_[0-9a-f]{40}"),
    # SonarQube user ("squ_"), project analysis ("sqp_") and global analysis ("sqa_") tokens, 40 hex.
    # https://docs.sonarsource.com/sonarqube-server/latest/user-guide/managing-tokens/
    Rule("sonarqube-token", r"sq[uap]_[0-9a-f]{40}"),
    # Tailscale keys: "tskey-" + kind + "-" + key id + "-" + secret. https://tailscale.com/kb/1277/key-prefixes
    Rule("tailscale-key", r"tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}"),
    # Fly.io tokens: macaroons "fm2_" (shown as "FlyV1 fm2_...") and the earlier "fm1a_"/"fm1r_",
    # and older "fo1_" tokens. https://fly.io/docs/security/tokens/
    Rule("flyio-token", r"fm(?:2|1[ar])_[A-Za-z0-9+/=_-]{50,}|fo1_[A-Za-z0-9_-]{43}"),
    # Cloudflare Origin CA keys: "v1.0-", 24 hex, "-", 146 hex.
    # https://developers.cloudflare.com/fundamentals/api/get-started/ca-keys/
    Rule("cloudflare-origin-ca-key", r"v1\.0-[0-9a-f]{24}-[0-9a-f]{146}"),
    # Supabase personal access tokens "sbp_" (40 hex) and secret API keys "sb_secret_".
    # https://supabase.com/docs/guides/api/api-keys
    Rule("supabase-token", r"sbp_[0-9a-f]{40}|sb_secret_[A-Za-z0-9_-]{30,}"),
    # Netlify personal access tokens: "nfp_" and 36 characters.
    # https://docs.netlify.com/api-and-cli-guides/api-guides/get-started-with-api/
    Rule("netlify-access-token", r"nfp_[A-Za-z0-9]{36}"),
    # 1Password service account tokens: "ops_" and a base64 JSON document ("eyJ").
    # https://developer.1password.com/docs/service-accounts/
    Rule("onepassword-service-token", r"ops_eyJ[A-Za-z0-9+/_-]{100,}={0,2}"),
    # age secret keys: Bech32 with the human-readable part "AGE-SECRET-KEY-", upper case, checked.
    # https://age-encryption.org/v1 (C2SP age specification, "X25519 recipient stanza")
    Rule("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", check=bech32_valid),
    # -- Clouds
    # Alibaba Cloud AccessKey ids: "LTAI" and 12-20 characters.
    # https://www.alibabacloud.com/help/en/ram/user-guide/create-an-accesskey-pair
    Rule("alibaba-access-key-id", r"LTAI[A-Za-z0-9]{12,20}"),
    # Tencent Cloud SecretIds: "AKID" and 32 characters. https://www.tencentcloud.com/document/product/598/34228
    Rule("tencent-secret-id", r"AKID[A-Za-z0-9]{32}"),
    # Microsoft Entra ID (Azure AD) client secrets: 3 characters, a digit, "Q~", 31-34 characters.
    # https://learn.microsoft.com/en-us/purview/sit-defn-azure-ad-client-secret
    Rule("azuread-client-secret", r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}"),
    # Google OAuth client secrets "GOCSPX-" and OAuth 2.0 access tokens "ya29.".
    # https://developers.google.com/identity/protocols/oauth2
    Rule("google-oauth-client-secret", r"GOCSPX-[A-Za-z0-9_-]{28}"),
    Rule("google-oauth-access-token", r"ya29\.[A-Za-z0-9_-]{30,}"),
    # Mapbox secret tokens: "sk." and a JWT-like body. https://docs.mapbox.com/help/dive-deeper/access-tokens/
    Rule("mapbox-secret-token", r"sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"),
    # -- SaaS and developer tools
    # Shopify admin API ("shpat_"), custom app ("shpca_"), private app ("shppa_") tokens and
    # shared secrets ("shpss_"), 32 hex. https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens
    Rule("shopify-token", r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}"),
    # Atlassian (Jira, Confluence) API tokens: "ATATT3" and a long body ending "=" and 8 hex.
    # https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/
    Rule("atlassian-api-token", r"ATATT3[A-Za-z0-9_-]{150,}=[0-9A-F]{8}"),
    # Linear personal API keys "lin_api_" and OAuth tokens "lin_oauth_".
    # https://linear.app/developers/graphql#personal-api-keys
    Rule("linear-api-key", r"lin_api_[A-Za-z0-9]{40}|lin_oauth_[0-9a-f]{64}"),
    # Notion integration tokens: "ntn_" since 2024, "secret_" and 43 characters before.
    # https://developers.notion.com/docs/authorization
    Rule("notion-token", r"ntn_[A-Za-z0-9]{40,}|secret_[A-Za-z0-9]{43}"),
    # Figma personal access tokens: "figd_". https://www.figma.com/developers/api#access-tokens
    Rule("figma-access-token", r"figd_[A-Za-z0-9_-]{38,}"),
    # Postman API keys: "PMAK-", 24 hex, "-", 34 hex.
    # https://learning.postman.com/docs/developer/postman-api/authentication/
    Rule("postman-api-key", r"PMAK-[0-9a-f]{24}-[0-9a-f]{34}"),
    # Contentful personal access tokens: "CFPAT-" and 43 characters.
    # https://www.contentful.com/developers/docs/references/authentication/
    Rule("contentful-access-token", r"CFPAT-[A-Za-z0-9_-]{43}"),
    # Airtable personal access tokens: "pat", a 14-character id, ".", 64 hex.
    # https://airtable.com/developers/web/guides/personal-access-tokens
    Rule("airtable-access-token", r"pat[A-Za-z0-9]{14}\.[0-9a-f]{64}"),
    # ClickUp personal API tokens: "pk_", the user id, "_", 32 characters.
    # https://clickup.com/api/developer-portal/authentication/
    Rule("clickup-api-token", r"pk_[0-9]{6,10}_[A-Z0-9]{32}"),
    # Prefect Cloud API keys: "pnu_" (user) or "pnb_" (service account) and 36 characters.
    # https://docs.prefect.io/v3/manage/cloud/manage-users/api-keys
    Rule("prefect-api-key", r"pn[ub]_[A-Za-z0-9]{36}"),
    # RubyGems API keys: "rubygems_" and 48 hex digits. https://guides.rubygems.org/api-key-scopes/
    Rule("rubygems-api-key", r"rubygems_[0-9a-f]{48}"),
    # NuGet.org API keys: "oy2" and 43 lower-case characters.
    # https://learn.microsoft.com/en-us/nuget/nuget-org/scoped-api-keys
    Rule("nuget-api-key", r"oy2[a-z0-9]{43}"),
    # crates.io API tokens: "cio" and 32 characters. https://doc.rust-lang.org/cargo/reference/publishing.html
    Rule("crates-api-token", r"cio[A-Za-z0-9]{32}"),
    # Dropbox short-lived access tokens: "sl." (or "sl.u.") and 130+ characters.
    # https://developers.dropbox.com/oauth-guide
    Rule("dropbox-access-token", r"sl\.(?:u\.)?[A-Za-z0-9_-]{130,}"),
    # Kubernetes Secret manifests (a `kubectl get secret -o yaml` in a log): the base64 values under
    # `data:`, masked with their keys, in a text that says `kind: Secret` (not ExternalSecret,
    # SopsSecret). Each line is anchored by its line break: linear in the text.
    # https://kubernetes.io/docs/concepts/configuration/secret/
    Rule("kubernetes-secret-data",
         r"\bdata:[ \t]*\r?\n((?:[ \t]+(?:#[^\n]*|[\w.-]+:[ \t]*(?:[|>][-+]?[ \t]*\r?\n[ \t]+)?"
         r"[\"']?[A-Za-z0-9+/]{10,}={0,3}[\"']?)[ \t]*(?:\r?\n|$))+)",
         alone=False, exact=True, needs_digit=False, context=r"(?i)\bkind:[ \t]*[\"']?secret[\"']?(?![\w-])",
         loose=r"data:[ \t]*\r?\n[ \t]"),
    # -- Payments, commerce and messaging
    # Stripe webhook signing secrets: "whsec_". https://docs.stripe.com/webhooks#verify-events
    Rule("stripe-webhook-secret", r"whsec_[A-Za-z0-9]{32,}"),
    # Flutterwave secret keys: "FLWSECK-" (or "FLWSECK_TEST-"), 32 hex, "-X".
    # https://developer.flutterwave.com/docs/authentication
    # Public keys "FLWPUBK" (gitleaks reports them too) and test encryption keys, 12 hex.
    Rule("flutterwave-secret-key",
         r"FLW(?:SECK|PUBK)(?:_TEST)?-[0-9a-fA-F]{32}-X|FLWSECK_TEST-[0-9a-fA-F]{12}"),
    # Square access tokens: "EAAA" and 60 characters (gitleaks: 22 to 60); legacy personal access
    # tokens "sq0atp-" and 22. https://developer.squareup.com/docs/build-basics/access-tokens
    Rule("square-access-token", r"(?:EAAA|sq0atp-)[A-Za-z0-9_-]{22,60}"),
    # Braintree (PayPal) access tokens: "access_token$production$", merchant id, "$", 32 hex.
    # https://developer.paypal.com/braintree/docs/guides/authentication/credentials
    Rule("braintree-access-token", r"access_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[0-9a-f]{32}"),
    # Plaid access tokens: "access-" + environment + "-" + UUID. https://plaid.com/docs/api/items/
    Rule("plaid-access-token", rf"access-(?:sandbox|development|production)-{_UUID}"),
    # Shippo API tokens: "shippo_live_" / "shippo_test_" and 40 hex digits.
    # https://docs.goshippo.com/docs/guides_general/authentication/
    Rule("shippo-api-token", r"shippo_(?:live|test)_[0-9a-fA-F]{40}"),
    # Brevo (Sendinblue) API keys: "xkeysib-", 64 hex, "-", 16 characters.
    # https://developers.brevo.com/docs/getting-started
    Rule("brevo-api-key", r"xkeysib-[0-9a-f]{64}-[A-Za-z0-9]{16}"),
    # Discord webhook URLs: the token after the webhook id is the secret.
    # https://discord.com/developers/docs/resources/webhook
    Rule("discord-webhook", r"discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/([A-Za-z0-9_-]{60,68})"),
    # Microsoft Teams incoming webhook URLs: the path after "webhookb2/" is the secret; the tenant's
    # host is masked with it, as gitleaks reports the whole URL. The ids are matched as letters and
    # digits, not only hex: the path alone is distinctive.
    # https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
    Rule("msteams-webhook",
         rf"[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/{_ID}@{_ID}/IncomingWebhook/[0-9a-z]{{32}}/{_ID}"),
    # Added for the families the gitleaks measurement (benchmarks/gitleaks_recall.py) found missing,
    # each from the provider's own description of its tokens.
    # 1Password Secret Keys: "A3-", then groups of 6, 6, 5, 5, 5, 5 characters (the second hyphen is
    # left out where the key is written as one block). https://support.1password.com/secret-key/
    Rule("onepassword-secret-key", r"A3-[A-Z0-9]{6}-[A-Z0-9]{6}-?[A-Z0-9]{5}(?:-[A-Z0-9]{5}){3}"),
    # Adobe Developer Console OAuth client secrets start "p8e-".
    # https://developer.adobe.com/developer-console/docs/guides/authentication/ServerToServerAuthentication/
    Rule("adobe-client-secret", r"p8e-[A-Za-z0-9]{32}"),
    # JFrog reference tokens: base64 of "reftkn:...", 64 characters.
    # https://jfrog.com/help/r/jfrog-platform-administration-documentation/access-tokens
    Rule("artifactory-reference-token", r"cmVmd[A-Za-z0-9]{59}"),
    # Clojars deploy tokens: "CLOJARS_" and 60 hex characters.
    # https://github.com/clojars/clojars-web/wiki/Deploy-Tokens
    Rule("clojars-deploy-token", r"CLOJARS_[A-Za-z0-9]{60}"),
    # Defined Networking API keys: "dnkey-", then two parts.  https://docs.defined.net/guides/automating-host-creation/
    Rule("defined-networking-api-key", r"dnkey-[A-Za-z0-9=_-]{26}-[A-Za-z0-9=_-]{52}"),
    # Duffel access tokens: "duffel_test_" or "duffel_live_" and 43 characters.
    # https://duffel.com/docs/api/overview/making-requests/authentication
    Rule("duffel-access-token", r"duffel_(?:test|live)_[A-Za-z0-9_=-]{43}"),
    # EasyPost API keys: "EZAK" (production) or "EZTK" (test) and 54 characters.
    # https://docs.easypost.com/docs/authentication
    Rule("easypost-api-key", r"EZ[AT]K[A-Za-z0-9]{54}"),
    # Meta: page and user access tokens start "EAA"; an app access token is "{app-id}|{app-secret}".
    # https://developers.facebook.com/docs/facebook-login/guides/access-tokens/
    Rule("facebook-access-token", r"EAA[A-Za-z0-9]{100,}"),
    Rule("facebook-app-access-token", r"[0-9]{15,16}(?:\||%)[A-Za-z0-9_-]{27,40}"),
    # Frame.io developer tokens: "fio-u-" and 64 characters.  https://developer.frame.io/docs/getting-started/authentication
    Rule("frameio-developer-token", r"fio-u-[A-Za-z0-9_=-]{64}"),
    # GitLab routable tokens (16.x): prefix, base64url payload, "." and a 9-character version and CRC.
    # https://docs.gitlab.com/ee/security/tokens/#token-prefixes
    Rule("gitlab-routable-token", r"gl(?:pat-|rt-t[0-9]_)[A-Za-z0-9_-]{27,300}\.[0-9a-z]{9}"),
    Rule("gitlab-session-cookie", r"_gitlab_session=([0-9a-z]{32})", alone=False),
    # GoCardless access tokens: "live_" (or "sandbox_") and 40 characters.
    # https://developer.gocardless.com/getting-started/api/making-your-first-request/
    Rule("gocardless-access-token", r"(?:live|sandbox)_[A-Za-z0-9_=-]{40}"),
    # Grafana API keys (before service accounts): base64 of '{"k":"...', so "eyJrIjoi".
    # https://grafana.com/docs/grafana/latest/administration/service-accounts/migrate-api-keys/
    Rule("grafana-api-key", r"eyJrIjoi[A-Za-z0-9]{70,400}={0,3}"),
    # Harness personal and service account tokens: "pat." or "sat.", account id, token id, secret.
    # https://developer.harness.io/docs/platform/automation/api/add-and-manage-api-keys/
    Rule("harness-access-token", r"(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}"),
    # Heroku API keys since 2024: "HRKU-AA" and 58 characters.  https://devcenter.heroku.com/articles/authentication
    Rule("heroku-api-key", r"HRKU-AA[A-Za-z0-9_-]{58}"),
    # Infracost API keys: "ico-" and 32 characters.  https://www.infracost.io/docs/integrations/environment_variables/
    Rule("infracost-api-key", r"ico-[A-Za-z0-9]{32}"),
    # 42 intra OAuth secrets: "s-s4t2ud-" (user) or "s-s4t2af-" (application) and 64 hex characters.
    # https://api.intra.42.fr/apidoc/guides/getting_started
    Rule("intra42-client-secret", r"s-s4t2(?:ud|af)-[0-9a-fA-F]{64}"),
    # Mailgun private API keys (the older format): "key-" and 32 hex characters.
    # https://documentation.mailgun.com/docs/mailgun/api-reference/authentication/
    Rule("mailgun-api-key", r"key-[0-9a-fA-F]{32}"),
    # MaxMind license keys since 2024: 6 characters, "_", 29 characters, "_mmk".
    # https://support.maxmind.com/hc/en-us/articles/4407111582235-Generate-a-License-Key
    Rule("maxmind-license-key", r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk"),
    # New Relic browser keys: "NRJS-" and 19 hex characters.
    # https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/
    Rule("newrelic-browser-key", r"NRJS-[0-9a-fA-F]{19}"),
    # Octopus Deploy API keys: "API-" and 26 upper-case letters and digits.
    # https://octopus.com/docs/octopus-rest-api/how-to-create-an-api-key
    Rule("octopus-api-key", r"API-[A-Z0-9]{26}"),
    # OpenShift OAuth access tokens: "sha256~" and 43 base64url characters.
    # https://docs.openshift.com/container-platform/4.14/authentication/managing-oauth-access-tokens.html
    Rule("openshift-access-token", r"sha256~[A-Za-z0-9_-]{43}"),
    # ReadMe API keys: "rdme_" and 70 characters.  https://docs.readme.com/main/reference/intro/authentication
    Rule("readme-api-key", r"rdme_[A-Za-z0-9]{70}"),
    # Scalingo API tokens: "tk-us-" and 48 characters.  https://doc.scalingo.com/platform/user-management/api-tokens
    Rule("scalingo-api-token", r"tk-us-[A-Za-z0-9_-]{48}"),
    # SettleMint access tokens: "sm_aat_", "sm_pat_" or "sm_sat_" and 16 characters.
    # https://console.settlemint.com/documentation/platform-components/security-and-authentication/application-access-tokens
    # No digit needed: one in 16 of these 16-character tokens has none; the prefix tells them.
    Rule("settlemint-access-token", r"sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}", needs_digit=False),
    # Sourcegraph access tokens: "sgp_", an optional instance id ("local" or 16 hex) and 40 hex.
    # https://sourcegraph.com/docs/cli/how-tos/creating_an_access_token
    Rule("sourcegraph-access-token", r"sgp_(?:(?:[0-9a-fA-F]{16}|local)_)?[0-9a-fA-F]{40}"),
    # Twitter/X app-only bearer tokens start with 22 "A"s, then 80 or more characters.
    # https://developer.x.com/en/docs/authentication/oauth-2-0/bearer-tokens
    Rule("twitter-bearer-token", r"A{22}[A-Za-z0-9%]{80,}"),
    # Typeform personal access tokens: "tfp_" and a base64url-ish secret.
    # https://www.typeform.com/developers/get-started/personal-access-token/
    Rule("typeform-access-token", r"tfp_[A-Za-z0-9_.=-]{44,64}"),
    # Yandex Cloud: API keys "AQVN" and 35-38 characters; IAM tokens "t1." and two dot-separated
    # parts; static access key secrets "YC" and 38 characters.
    # https://yandex.cloud/en/docs/iam/concepts/authorization/api-key,
    # https://yandex.cloud/en/docs/iam/concepts/authorization/iam-token,
    # https://yandex.cloud/en/docs/iam/concepts/authorization/access-key
    Rule("yandex-api-key", r"AQVN[A-Za-z0-9_-]{35,38}"),
    Rule("yandex-iam-token", r"t1\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]{86}={0,2}"),
    Rule("yandex-access-key-secret", r"YC[A-Za-z0-9_-]{38}"),
    # OpenAI project, service account and admin keys: "sk-proj-", "sk-svcacct-" or "sk-admin-", then
    # base64url around the marker "T3BlbkFJ" (detect-secrets' rule wants letters and digits only
    # beside it). https://platform.openai.com/docs/api-reference/authentication
    Rule("openai-project-key", r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"),
    # ClickHouse Cloud API key secrets: "4b1d" and 38 characters, nothing after (not the start of a
    # longer hex digest). https://clickhouse.com/docs/cloud/manage/openapi
    Rule("clickhouse-api-key-secret", r"4b1d[A-Za-z0-9]{38}(?![A-Za-z0-9])"),
    # Authress service client access keys: "sc_" (or "ext_", "scauth_", "authress_"), client id,
    # key id, "acc_" account id and a base64 private key, dot-separated.
    # https://authress.io/knowledge-base/docs/authorization/service-clients
    Rule("authress-access-key",
         r"(?:sc|ext|scauth|authress)_[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_-][A-Za-z0-9-]{10,32}"
         r"\.[A-Za-z0-9+/_=-]{30,120}"),
)


def _detect_secrets_rules() -> tuple[Rule, ...]:
    rules = []
    for path, (family, alone) in DETECT_SECRETS_PLUGINS.items():
        module, name = path.rsplit(".", 1)
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        for number, pattern in enumerate(plugin.denylist):
            rules.append(Rule(f"{family}-{name}-{number}", pattern.pattern, pattern.flags, alone))
    return tuple(rules)



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
    if rule.exact:
        start, end = max((match.span(group) for group in range(1, match.re.groups + 1)
                          if match.start(group) != -1), key=lambda span: (span[1], -span[0]))
    else:
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
    if not secret or is_placeholder(secret) or shannon_entropy(secret) < rule.min_entropy:
        return None
    if rule.needs_digit and not any(char.isdigit() for char in secret):
        return None
    if rule.check is not None and not rule.check(secret):
        return None
    if rule.context is not None and rule.context.search(text) is None:
        return None
    if rule.not_named is not None and rule.not_named.search(text, match.start(), start) is not None:
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
        ((rule.loose or _unanchored(rule.pattern.pattern)).encode(),
         bool(rule.pattern.flags & re.IGNORECASE))
        for rule in RULES
    ]


# gitleaks' semi-generic template: a name holding the provider's word, an assignment, the value.
GITLEAKS_ASSIGNMENT = re.compile(re.escape(r"""(?:[ \t\w.-]{0,20})[\s'"]{0,3}""") + r"\)?"
                                 + re.escape(r"(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)"))
_GITLEAKS_NAME_START = r"[\w.-]{0,50}?"
# Rules of a secret told by where it stands, not by a format of its own: a curl command's
# Authorization header or -u user:password, a nuget.config password, a PHP 'secret_key' => 'sk_...'
# (Freemius), a Terraform password. gitleaks binds the last three to file paths; telemetry carries
# such text without one. Kubernetes' YAML rule is not loaded: its nested lazy repeats
# ((?:.|\s){0,200}?) backtrack for seconds on some texts, which would stall a partition.
GITLEAKS_CONTEXT_RULES = frozenset({
    "curl-auth-header", "curl-auth-user", "nuget-config-password", "freemius-secret-key",
    "hashicorp-tf-password",
})
# Not loaded: gitleaks' generic rule (its secret words are the GENERIC_SECRET detector's, which
# judges the value by digits and entropy; loaded, every "key: value" would run its regex).
GITLEAKS_NOT_LOADED = frozenset({"generic-api-key"})
# The least entropy of a value after a provider's name where gitleaks sets none: "aaaabbbbccccdddd"
# (2.0) and the placeholders is_placeholder names stay; 16 random digits reach 2.3 to 3.3.
GITLEAKS_MIN_ENTROPY = 2.2
# Names of the structure telemetry carries, not of a credential: the hex after
# `datadog.git.commit.sha=` is a commit, after `sentry.trace_id=` a trace.
GITLEAKS_STRUCTURAL_NAMES = (
    r"commit|sha(?:1|256)?(?![a-z])|digest|checksum|hash|revision|trace_?id|span_?id|etag"
)


_MID_CASE_FLAG = re.compile(r"(?<!^)\(\?i\)")


def python_regex(go_regex: str) -> tuple[str, int]:
    """A Go (RE2) regex of gitleaks as Python's re pattern and flags: a `(?i)` past the start applies
    to the rest of its group in RE2 and is an error in Python; it becomes a whole-pattern flag (a
    superset). RE2's `\\z` is Python's `\\Z`."""
    pattern = go_regex.replace(r"\z", r"\Z")
    if _MID_CASE_FLAG.search(pattern):
        return _MID_CASE_FLAG.sub("", pattern), re.IGNORECASE
    return pattern, 0


def gitleaks_config() -> dict:
    """gitleaks' default rule set, vendored (gitleaks/SOURCE.md)."""
    return tomllib.loads(resources.files(__package__).joinpath("gitleaks", "gitleaks.toml").read_text())


def _gitleaks_keyword_rules() -> tuple[Rule, ...]:
    """gitleaks' rules of the form "name holding the provider's word = value", and its context
    rules (GITLEAKS_CONTEXT_RULES), as gitleaks keeps them: a value of 32 letters and digits is a
    secret only by the name before it, which a token format of our own cannot tell. The value is
    the group ending last, delimited by the regex itself, and needs no digit (the name is the
    evidence; gitleaks' own entropy, at least GITLEAKS_MIN_ENTROPY, applies); the prefilter looks
    for the regex without its leading optional name characters."""
    rules = []
    for rule in gitleaks_config()["rules"]:
        regex = rule.get("regex", "")
        context = rule["id"] in GITLEAKS_CONTEXT_RULES
        if not context and (not GITLEAKS_ASSIGNMENT.search(regex) or "path" in rule
                            or rule["id"] in GITLEAKS_NOT_LOADED):
            continue
        regex, flags = python_regex(regex)
        rules.append(Rule(
            rule["id"], regex, flags, alone=False, exact=True, needs_digit=False,
            not_named=GITLEAKS_STRUCTURAL_NAMES,
            min_entropy=max(rule.get("entropy", 0), GITLEAKS_MIN_ENTROPY),
            loose=_gitleaks_loose(regex),
        ))
    return tuple(rules)


def _gitleaks_loose(regex: str) -> str:
    """A gitleaks rule's pattern for the prefilter: without its leading optional name characters
    and, for a "name = value" rule, cut after the assignment (the provider's word, the name's rest,
    the operator: the value's class made the scan 15% slower). A rule that goes on with another
    alternative after the value (Atlassian's `...)|\\b(ATATT3...)`) keeps it whole."""
    loose = regex.replace(_GITLEAKS_NAME_START, "").replace("(?-i:", "(?:")
    assignment = GITLEAKS_ASSIGNMENT.search(loose)
    if assignment is not None and ")|" not in loose[assignment.end():]:
        loose = loose[:assignment.end()]
    return _unanchored(loose)


RULES: tuple[Rule, ...] = _detect_secrets_rules() + OWN_RULES + _gitleaks_keyword_rules()
