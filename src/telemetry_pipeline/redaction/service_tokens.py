"""Tokens and keys of ~190 services: gitleaks' default rule set, as rules with keywords.

Source: gitleaks (https://github.com/gitleaks/gitleaks), config/gitleaks.toml at commit
009e025ad4106ab333aa0b9dc4f2a884390d134c, MIT licence, Copyright (c) 2019 Zachary Rice. No Python
library keeps these rules, so they are copied here, rule id for rule id, with these changes:
- Go's inline (?i) that runs to the end of its group is written as a scoped (?i:...) group, and
  the case-sensitive name parts (?-i:...) of a few names are folded into the caseless name;
- the two rule shapes gitleaks generates (a vendor name assigned a value; a token standing alone)
  are written once each (_assigned, _alone);
- left out: rules our own detectors cover (AWS access keys, GitHub, GitLab, Slack, Stripe, Google
  API keys, JWTs, private keys, generic secret assignments), rules that need a file path
  (Terraform, NuGet, PHP, Kubernetes YAML, PKCS#12), and the curl command rules (their Bearer,
  Basic and user:password values are found by the bearer, basic and URL credential detectors).

As in gitleaks, a rule runs only on text that holds one of its keywords (lower case), and its
secret (the first group, or the match) must reach the rule's Shannon entropy and not be a
placeholder. Patterns use re.ASCII: \\w, \\s, \\d and \\b are ASCII, as in Go's RE2.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# gitleaks' semi-generic shape: a name holding one of `names`, an assignment, then the value.
_ASSIGNED = (
    r"(?i)[\w.-]{{0,50}}?(?:{names})(?:[ \t\w.-]{{0,20}})[\s'\"]{{0,3}}"
    r"(?:=|>|:{{1,3}}=|\|\||:|=>|\?=|,)[\x60'\"\s=]{{0,5}}({value})(?:[\x60'\"\s;]|\\[nr]|$)"
)
# gitleaks' unique-token shape: a token on a word boundary, then a delimiter or the end.
_ALONE = r"\b({token})(?:[\x60'\"\s;]|\\[nr]|$)"


class Rule:
    """One gitleaks rule: its id, regex, keywords (lower case) and minimum entropy of the secret;
    `secret`, the secret's own pattern, and `name`, a name it is assigned to (as gitleaks makes its
    test strings from them)."""

    __slots__ = ("allow", "entropy", "id", "keywords", "name", "pattern", "regex", "secret")

    def __init__(
        self, rule_id: str, regex: str, keywords: tuple[str, ...], entropy: float = 0.0, allow: str = "",
        secret: str = "", name: str = "",
    ) -> None:
        self.id = rule_id
        self.regex = regex
        self.secret = secret or regex
        self.name = name or rule_id.split("-")[0]
        self.keywords = keywords
        self.entropy = entropy
        self.pattern = re.compile(regex, re.ASCII)
        # A rule's own allowlist: secrets matching it are not secrets (e.g. Vault's s. + 24 letters).
        self.allow = re.compile(allow, re.ASCII) if allow else None


def _assigned(
    rule_id: str, names: str, value: str, entropy: float = 0.0, keywords: tuple[str, ...] | None = None,
    name: str = "",
) -> Rule:
    plain = names.replace("[_-]?", "").replace("\\", "").lower().split("|")
    return Rule(rule_id, _ASSIGNED.format(names=names, value=value), keywords or tuple(plain), entropy,
                secret=value, name=name or re.sub(r"[^a-z0-9_]", "", plain[0]))


def _alone(rule_id: str, token: str, keywords: tuple[str, ...], entropy: float = 0.0) -> Rule:
    return Rule(rule_id, _ALONE.format(token=token), keywords, entropy, secret=token)


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

RULES: tuple[Rule, ...] = (
    Rule("1password-secret-key",
         r"\bA3-[A-Z0-9]{6}-(?:(?:[A-Z0-9]{11})|(?:[A-Z0-9]{6}-[A-Z0-9]{5}))-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\b",
         ("a3-",), 3.8),
    Rule("1password-service-account-token", r"ops_eyJ[a-zA-Z0-9+/]{250,}={0,3}", ("ops_",), 4),
    _assigned("adafruit-api-key", "adafruit", "[a-z0-9_-]{32}"),
    _assigned("adobe-client-id", "adobe", "[a-f0-9]{32}", 2),
    _alone("adobe-client-secret", "p8e-(?i:[a-z0-9]{32})", ("p8e-",), 2),
    Rule("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", ("age-secret-key-1",)),
    _assigned("airtable-api-key", "airtable", "[a-z0-9]{17}"),
    _assigned("algolia-api-key", "algolia", "[a-z0-9]{32}"),
    _alone("alibaba-access-key-id", "LTAI(?i:[a-z0-9]{20})", ("ltai",), 2),
    _assigned("alibaba-secret-key", "alibaba", "[a-z0-9]{30}", 2),
    _alone("anthropic-admin-api-key", r"sk-ant-admin01-[a-zA-Z0-9_\-]{93}AA", ("sk-ant-admin01",)),
    _alone("anthropic-api-key", r"sk-ant-api03-[a-zA-Z0-9_\-]{93}AA", ("sk-ant-api03",)),
    Rule("artifactory-api-key", r"\bAKCp[A-Za-z0-9]{69}\b", ("akcp",), 4.5),
    Rule("artifactory-reference-token", r"\bcmVmd[A-Za-z0-9]{59}\b", ("cmvmd",), 4.5),
    _assigned("asana-client-id", "asana", "[0-9]{16}"),
    _assigned("asana-client-secret", "asana", "[a-z0-9]{32}"),
    Rule("atlassian-api-token",
         _ASSIGNED.format(names="atlassian|confluence|jira", value="[a-z0-9]{20}[a-f0-9]{4}")
         + r"|\b(ATATT3[A-Za-z0-9_\-=]{186})(?:[\x60'\"\s;]|\\[nr]|$)",
         ("atlassian", "confluence", "jira", "atatt3"), 3.5),
    _alone("authress-service-client-access-key",
           r"(?:sc|ext|scauth|authress)_(?i:[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.)acc[_-](?i:[a-z0-9-]{10,32}\.[a-z0-9+/_=-]{30,120})",
           ("sc_", "ext_", "scauth_", "authress_"), 2),
    Rule("azure-ad-client-secret",
         r"(?:^|[\\'\"\x60\s>=:(,)])([a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34})(?:$|[\\'\"\x60\s<),])",
         ("q~",), 3),
    _assigned("beamer-api-token", "beamer", r"b_[a-z0-9=_\-]{44}"),
    _assigned("bitbucket-client-id", "bitbucket", "[a-z0-9]{32}"),
    _assigned("bitbucket-client-secret", "bitbucket", r"[a-z0-9=_\-]{64}"),
    _assigned("bittrex-access-key", "bittrex", "[a-z0-9]{32}"),
    _assigned("bittrex-secret-key", "bittrex", "[a-z0-9]{32}"),
    _assigned("cisco-meraki-api-key", "meraki", "[0-9a-f]{40}", 3),
    Rule("clickhouse-cloud-api-secret-key", r"\b(4b1d[A-Za-z0-9]{38})\b", ("4b1d",), 3),
    Rule("clojars-api-token", r"(?i)CLOJARS_[a-z0-9]{60}", ("clojars_",), 2),
    _assigned("cloudflare-api-key", "cloudflare", "[a-z0-9_-]{40}", 2),
    _assigned("cloudflare-global-api-key", "cloudflare", "[a-f0-9]{37}", 2),
    _alone("cloudflare-origin-ca-key", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}", ("cloudflare", "v1.0-"), 2),
    _assigned("codecov-access-token", "codecov", "[a-z0-9]{32}"),
    _assigned("cohere-api-token", "cohere|CO_API_KEY", "[a-zA-Z0-9]{40}", 4),
    _assigned("coinbase-access-token", "coinbase", "[a-z0-9_-]{64}"),
    _assigned("confluent-access-token", "confluent", "[a-z0-9]{16}"),
    _assigned("confluent-secret-key", "confluent", "[a-z0-9]{64}"),
    _assigned("contentful-delivery-api-token", "contentful", r"[a-z0-9=_\-]{43}"),
    _alone("databricks-api-token", r"dapi[a-f0-9]{32}(?:-\d)?", ("dapi",), 3),
    _assigned("datadog-access-token", "datadog", "[a-z0-9]{40}"),
    _assigned("defined-networking-api-token", "dnkey", r"dnkey-[a-z0-9=_\-]{26}-[a-z0-9=_\-]{52}"),
    _alone("digitalocean-access-token", "doo_v1_[a-f0-9]{64}", ("doo_v1_",), 3),
    _alone("digitalocean-pat", "dop_v1_[a-f0-9]{64}", ("dop_v1_",), 3),
    _alone("digitalocean-refresh-token", "(?i:dor_v1_[a-f0-9]{64})", ("dor_v1_",)),
    _assigned("discord-api-token", "discord", "[a-f0-9]{64}"),
    _assigned("discord-client-id", "discord", "[0-9]{18}", 2),
    _assigned("discord-client-secret", "discord", r"[a-z0-9=_\-]{32}", 2),
    Rule("doppler-api-token", r"dp\.pt\.(?i:[a-z0-9]{43})", ("dp.pt.",), 2),
    _assigned("droneci-access-token", "droneci", "[a-z0-9]{32}"),
    _assigned("dropbox-api-token", "dropbox", "[a-z0-9]{15}"),
    _assigned("dropbox-long-lived-api-token", "dropbox", r"[a-z0-9]{11}AAAAAAAAAA[a-z0-9\-_=]{43}"),
    _assigned("dropbox-short-lived-api-token", "dropbox", r"sl\.[a-z0-9\-=_]{135}"),
    Rule("duffel-api-token", r"duffel_(?:test|live)_(?i:[a-z0-9_\-=]{43})", ("duffel_",), 2),
    Rule("dynatrace-api-token", r"dt0c01\.(?i:[a-z0-9]{24}\.[a-z0-9]{64})", ("dt0c01.",), 4),
    Rule("easypost-api-token", r"\bEZAK(?i:[a-z0-9]{54})\b", ("ezak",), 2),
    Rule("easypost-test-api-token", r"\bEZTK(?i:[a-z0-9]{54})\b", ("eztk",), 2),
    _assigned("etsy-access-token", "etsy", "[a-z0-9]{24}", 3),
    _alone("facebook-access-token", r"(?i:\d{15,16}(?:\||%)[0-9a-z\-_]{27,40})", ("facebook",), 3),
    _alone("facebook-page-access-token", "EAA[MC](?i:[a-z0-9]{100,})", ("eaam", "eaac"), 4),
    _assigned("facebook-secret", "facebook", "[a-f0-9]{32}", 3),
    _assigned("fastly-api-token", "fastly", r"[a-z0-9=_\-]{32}"),
    _assigned("finicity-api-token", "finicity", "[a-f0-9]{32}"),
    _assigned("finicity-client-secret", "finicity", "[a-z0-9]{20}"),
    _assigned("finnhub-access-token", "finnhub", "[a-z0-9]{20}"),
    _assigned("flickr-access-token", "flickr", "[a-z0-9]{32}"),
    Rule("flutterwave-encryption-key", "FLWSECK_TEST-(?i:[a-h0-9]{12})", ("flwseck_test",), 2),
    Rule("flutterwave-public-key", "FLWPUBK_TEST-(?i:[a-h0-9]{32}-X)", ("flwpubk_test",), 2),
    Rule("flutterwave-secret-key", "FLWSECK_TEST-(?i:[a-h0-9]{32}-X)", ("flwseck_test",), 2),
    _alone("flyio-access-token",
           r"(?:fo1_[\w-]{43}|fm1[ar]_[a-zA-Z0-9+/]{100,}={0,3}|fm2_[a-zA-Z0-9+/]{100,}={0,3})",
           ("fo1_", "fm1", "fm2_"), 4),
    Rule("frameio-api-token", r"fio-u-(?i:[a-z0-9\-_=]{64})", ("fio-u-",)),
    _assigned("freshbooks-access-token", "freshbooks", "[a-z0-9]{64}"),
    Rule("gitlab-pat-routable", r"\bglpat-[0-9a-zA-Z_-]{27,300}\.[0-9a-z]{2}[0-9a-z]{7}\b", ("glpat-",), 4),
    Rule("gitlab-rrt", r"GR1348941[\w-]{20}", ("gr1348941",), 3),
    Rule("gitlab-runner-authentication-token-routable",
         r"\bglrt-t\d_[0-9a-zA-Z_\-]{27,300}\.[0-9a-z]{2}[0-9a-z]{7}\b", ("glrt-",), 4),
    Rule("gitlab-session-cookie", "_gitlab_session=[0-9a-z]{32}", ("_gitlab_session=",), 3),
    _assigned("gitter-access-token", "gitter", "[a-z0-9_-]{40}"),
    _assigned("gocardless-api-token",
              "gocardless", r"live_[a-z0-9\-_=]{40}", keywords=("live_", "gocardless")),
    _alone("grafana-api-key", "(?i:eyJrIjoi[A-Za-z0-9]{70,400}={0,3})", ("eyjrijoi",), 3),
    _alone("grafana-cloud-api-token", "(?i:glc_[A-Za-z0-9+/]{32,400}={0,3})", ("glc_",), 3),
    _alone("grafana-service-account-token", "(?i:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})", ("glsa_",), 3),
    Rule("harness-api-key",
         r"(?:pat|sat)\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9]{24}\.[a-zA-Z0-9]{20}", ("pat.", "sat.")),
    Rule("hashicorp-tf-api-token",
         r"(?i:[a-z0-9]{14}\.)atlasv1(?i:\.[a-z0-9\-_=]{60,70})", ("atlasv1",), 3.5),
    _assigned("heroku-api-key", "heroku", _UUID),
    _alone("heroku-api-key-v2", "HRKU-AA[0-9a-zA-Z_-]{58}", ("hrku-aa",), 4),
    _assigned("hubspot-api-key", "hubspot", _UUID),
    _alone("huggingface-access-token", "hf_(?i:[a-z]{34})", ("hf_",), 2),
    _alone("huggingface-organization-api-token", "api_org_(?i:[a-z]{34})", ("api_org_",), 2),
    _alone("infracost-api-token", "ico-[a-zA-Z0-9]{32}", ("ico-",), 3),
    _assigned("intercom-api-key", "intercom", r"[a-z0-9=_\-]{60}"),
    _alone("intra42-client-secret", "s-s4t2(?:ud|af)-(?i:[abcdef0123456789]{64})",
           ("intra", "s-s4t2ud-", "s-s4t2af-"), 3),
    _assigned("jfrog-api-key", "jfrog|artifactory|bintray|xray", "[a-z0-9]{73}"),
    _assigned("jfrog-identity-token", "jfrog|artifactory|bintray|xray", "[a-z0-9]{64}"),
    _assigned("kraken-access-token", "kraken", r"[a-z0-9/=_+\-]{80,90}"),
    _assigned("kucoin-access-token", "kucoin", "[a-f0-9]{24}"),
    _assigned("kucoin-secret-key", "kucoin", _UUID),
    _assigned("launchdarkly-access-token", "launchdarkly", r"[a-z0-9=_\-]{40}"),
    Rule("linear-api-key", "lin_api_(?i:[a-z0-9]{40})", ("lin_api_",), 2),
    _assigned("linear-client-secret", "linear", "[a-f0-9]{32}", 2),
    _assigned("linkedin-client-id",
              "linked[_-]?in", "[a-z0-9]{14}", 2, ("linkedin", "linked_in", "linked-in")),
    _assigned("linkedin-client-secret",
              "linked[_-]?in", "[a-z0-9]{16}", 2, ("linkedin", "linked_in", "linked-in")),
    _assigned("lob-api-key", "lob", "(?:live|test)_[a-f0-9]{35}", keywords=("test_", "live_")),
    _assigned("lob-pub-api-key",
              "lob", "(?:test|live)_pub_[a-f0-9]{31}", keywords=("test_pub", "live_pub", "_pub")),
    _assigned("mailchimp-api-key", r"MailchimpSDK.initialize|mailchimp", r"[a-f0-9]{32}-us\d\d",
              keywords=("mailchimp",), name="mailchimp"),
    _assigned("mailgun-private-api-token", "mailgun", "key-[a-f0-9]{32}"),
    _assigned("mailgun-pub-key", "mailgun", "pubkey-[a-f0-9]{32}"),
    _assigned("mailgun-signing-key", "mailgun", "[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8}"),
    _assigned("mapbox-api-token", "mapbox", r"pk\.[a-z0-9]{60}\.[a-z0-9]{22}"),
    _assigned("mattermost-access-token", "mattermost", "[a-z0-9]{26}"),
    _alone("maxmind-license-key", "[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk", ("_mmk",), 4),
    _assigned("messagebird-api-token", "message[_-]?bird", "[a-z0-9]{25}",
              keywords=("messagebird", "message-bird", "message_bird")),
    _assigned("messagebird-client-id", "message[_-]?bird", _UUID,
              keywords=("messagebird", "message-bird", "message_bird")),
    Rule("microsoft-teams-webhook",
         r"https://[a-z0-9]+\.webhook\.office\.com/webhookb2/[a-z0-9]{8}-(?:[a-z0-9]{4}-){3}[a-z0-9]{12}@"
         r"[a-z0-9]{8}-(?:[a-z0-9]{4}-){3}[a-z0-9]{12}/IncomingWebhook/[a-z0-9]{32}/"
         r"[a-z0-9]{8}-(?:[a-z0-9]{4}-){3}[a-z0-9]{12}",
         ("webhook.office.com", "webhookb2", "incomingwebhook")),
    _assigned("netlify-access-token", "netlify", r"[a-z0-9=_\-]{40,46}"),
    _assigned("new-relic-browser-api-token", "new-relic|newrelic|new_relic", "NRJS-[a-f0-9]{19}",
              keywords=("nrjs-",)),
    _assigned("new-relic-insert-key",
              "new-relic|newrelic|new_relic", "NRII-[a-z0-9-]{32}", keywords=("nrii-",)),
    _assigned("new-relic-user-api-id", "new-relic|newrelic|new_relic", "[a-z0-9]{64}"),
    _assigned("new-relic-user-api-key",
              "new-relic|newrelic|new_relic", "NRAK-[a-z0-9]{27}", keywords=("nrak",)),
    _alone("notion-api-token", "ntn_[0-9]{11}[A-Za-z0-9]{32}[A-Za-z0-9]{3}", ("ntn_",), 4),
    _alone("npm-access-token", "(?i:npm_[a-z0-9]{36})", ("npm_",), 2),
    _assigned("nytimes-access-token", "nytimes|new-york-times,|newyorktimes", r"[a-z0-9=_\-]{32}",
              keywords=("nytimes", "new-york-times", "newyorktimes")),
    _alone("octopus-deploy-api-key", "API-[A-Z0-9]{26}", ("api-",), 3),
    _assigned("okta-access-token", "okta", r"00[\w=\-]{40}", 4),
    _alone("openai-api-key",
           r"sk-(?:proj|svcacct|admin)-(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})T3BlbkFJ"
           r"(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})\b|sk-[a-zA-Z0-9]{20}T3BlbkFJ[a-zA-Z0-9]{20}",
           ("t3blbkfj",), 3),
    Rule("openshift-user-token", r"\b(sha256~[\w-]{43})(?:[^\w-]|$)", ("sha256~",), 3.5),
    Rule("perplexity-api-key", r"\b(pplx-[a-zA-Z0-9]{48})(?:[\x60'\"\s;]|\\[nr]|$|\b)", ("pplx-",), 4),
    _assigned("plaid-api-token", "plaid", f"access-(?:sandbox|development|production)-{_UUID}"),
    _assigned("plaid-client-id", "plaid", "[a-z0-9]{24}", 3.5),
    _assigned("plaid-secret-key", "plaid", "[a-z0-9]{30}", 3.5),
    _alone("planetscale-api-token", r"pscale_tkn_(?i:[\w=.-]{32,64})", ("pscale_tkn_",), 3),
    _alone("planetscale-oauth-token", r"pscale_oauth_[\w=.-]{32,64}", ("pscale_oauth_",), 3),
    _alone("planetscale-password", r"(?i:pscale_pw_[\w=.-]{32,64})", ("pscale_pw_",), 3),
    _alone("postman-api-token", r"PMAK-(?i:[a-f0-9]{24}-[a-f0-9]{34})", ("pmak-",), 3),
    _alone("prefect-api-token", "pnu_[a-zA-Z0-9]{36}", ("pnu_",), 2),
    _assigned("privateai-api-token",
              "private[_-]?ai", "[a-z0-9]{32}", 3, ("privateai", "private_ai", "private-ai")),
    _alone("pulumi-api-token", "pul-[a-f0-9]{40}", ("pul-",), 2),
    Rule("pypi-upload-token", r"pypi-AgEIcHlwaS5vcmc[\w-]{50,1000}", ("pypi-ageichlwas5vcmc",), 3),
    _assigned("rapidapi-access-token", "rapidapi", "[a-z0-9_-]{50}"),
    _alone("readme-api-token", "rdme_[a-z0-9]{70}", ("rdme_",), 2),
    _alone("rubygems-api-token", "rubygems_[a-f0-9]{48}", ("rubygems_",), 2),
    _alone("scalingo-api-token", r"tk-us-[\w-]{48}", ("tk-us-",), 2),
    _assigned("sendbird-access-id", "sendbird", _UUID),
    _assigned("sendbird-access-token", "sendbird", "[a-f0-9]{40}"),
    _alone("sendgrid-api-token", r"SG\.(?i:[a-z0-9=_\-.]{66})", ("sg.",), 2),
    _alone("sendinblue-api-token", r"xkeysib-[a-f0-9]{64}-(?i:[a-z0-9]{16})", ("xkeysib-",), 2),
    _assigned("sentry-access-token", "sentry", "[a-f0-9]{64}", 3),
    Rule("sentry-org-token",
         r"\bsntrys_eyJpYXQiO[a-zA-Z0-9+/]{10,200}(?:LCJyZWdpb25fdXJs|InJlZ2lvbl91cmwi|cmVnaW9uX3VybCI6)"
         r"[a-zA-Z0-9+/]{10,200}={0,2}_[a-zA-Z0-9+/]{43}(?:[^a-zA-Z0-9+/]|$)",
         ("sntrys_eyjpyxqio",), 4.5),
    _alone("sentry-user-token", "sntryu_[a-f0-9]{64}", ("sntryu_",), 3.5),
    _alone("settlemint-application-access-token", "sm_aat_[a-zA-Z0-9]{16}", ("sm_aat",), 3),
    _alone("settlemint-personal-access-token", "sm_pat_[a-zA-Z0-9]{16}", ("sm_pat",), 3),
    _alone("settlemint-service-access-token", "sm_sat_[a-zA-Z0-9]{16}", ("sm_sat",), 3),
    _alone("shippo-api-token", "shippo_(?:live|test)_[a-fA-F0-9]{40}", ("shippo_",), 2),
    Rule("shopify-access-token", "shpat_[a-fA-F0-9]{32}", ("shpat_",), 2),
    Rule("shopify-custom-access-token", "shpca_[a-fA-F0-9]{32}", ("shpca_",), 2),
    Rule("shopify-private-app-access-token", "shppa_[a-fA-F0-9]{32}", ("shppa_",), 2),
    Rule("shopify-shared-secret", "shpss_[a-fA-F0-9]{32}", ("shpss_",), 2),
    _assigned("sidekiq-secret", "BUNDLE_ENTERPRISE__CONTRIBSYS__COM|BUNDLE_GEMS__CONTRIBSYS__COM",
              "[a-f0-9]{8}:[a-f0-9]{8}"),
    Rule("sidekiq-sensitive-url",
         r"(?i)\bhttps?://([a-f0-9]{8}:[a-f0-9]{8})@(?:gems.contribsys.com|enterprise.contribsys.com)(?:[/|#?:]|$)",
         ("gems.contribsys.com", "enterprise.contribsys.com")),
    _assigned("snyk-api-token",
              r"snyk[_.-]?(?:(?:api|oauth)[_.-]?)?(?:key|token)", _UUID, keywords=("snyk",),
              name="snyk_token"),
    _assigned("sonar-api-token", "sonar[_.-]?(?:login|token)", r"[a-z0-9=_\-]{40}", keywords=("sonar",),
              name="sonar_token"),
    _alone("sourcegraph-access-token",
           r"(?i:\b(?:sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}|sgp_[a-fA-F0-9]{40}|[a-fA-F0-9]{40})\b)",
           ("sgp_", "sourcegraph"), 3),
    _alone("square-access-token", r"(?:EAAA|sq0atp-)[\w-]{22,60}", ("sq0atp-", "eaaa"), 2),
    _assigned("squarespace-access-token", "squarespace", _UUID),
    _assigned("sumologic-access-id", "sumo", "su[a-zA-Z0-9]{12}", 3),
    _assigned("sumologic-access-token", "sumo", "[a-z0-9]{64}", 3),
    _assigned("telegram-bot-api-token", "telegr", r"[0-9]{5,16}:A[a-z0-9_\-]{34}"),
    _assigned("travisci-access-token", "travis", "[a-z0-9]{22}"),
    Rule("twilio-api-key", "SK[0-9a-fA-F]{32}", ("sk",), 3),
    _assigned("twitch-api-token", "twitch", "[a-z0-9]{30}"),
    _assigned("twitter-access-secret", "twitter", "[a-z0-9]{45}"),
    _assigned("twitter-access-token", "twitter", "[0-9]{15,25}-[a-zA-Z0-9]{20,40}"),
    _assigned("twitter-api-key", "twitter", "[a-z0-9]{25}"),
    _assigned("twitter-api-secret", "twitter", "[a-z0-9]{50}"),
    _assigned("twitter-bearer-token", "twitter", "A{22}[a-zA-Z0-9%]{80,100}"),
    _assigned("typeform-api-token", "typeform", r"tfp_[a-z0-9\-_.=]{59}", keywords=("tfp_",)),
    _alone("vault-batch-token", r"hvb\.[\w-]{138,300}", ("hvb.",), 4),
    Rule("vault-service-token", _ALONE.format(token=r"(?:hvs\.[\w-]{90,120}|s\.(?i:[a-z0-9]{24}))"),
         ("hvs.", "s."), 3.5, allow=r"s\.[A-Za-z]{24}"),
    _assigned("yandex-access-token", "yandex", r"t1\.[A-Z0-9a-z_-]+={0,2}\.[A-Z0-9a-z_-]{86}={0,2}"),
    _assigned("yandex-api-key", "yandex", r"AQVN[A-Za-z0-9_\-]{35,38}"),
    _assigned("yandex-aws-access-token", "yandex", r"YC[a-zA-Z0-9_\-]{38}"),
    _assigned("zendesk-secret-key", "zendesk", "[a-z0-9]{40}"),
)

# gitleaks' global allowlist of secrets: constants, template variables, one repeated character.
_PLACEHOLDER = re.compile(
    r"(?i)true|false|null|none|nil|undefined|redacted|\[redacted[^\]]*\]|(.)\1*|\$\{.*\}|\{\{.*\}\}"
    r"|\$(?:\d+|\{\d+\}|[A-Z_]+|[a-z_]+)|%(?:[A-Z_]+|[a-z_]+)%|<[^>]*>"
)
_STOPWORDS = ("014df517-39d1-4453-b7b3-9930c563627c", "abcdefghijklmnopqrstuvwxyz")


def is_placeholder(value: str) -> bool:
    """A constant, a template variable or a filler standing where a secret would be."""
    return _PLACEHOLDER.fullmatch(value) is not None or any(word in value.lower() for word in _STOPWORDS)


def shannon_entropy(text: str) -> float:
    length = len(text)
    return -sum(count / length * math.log2(count / length) for count in Counter(text).values())


KEYWORDS: dict[str, tuple[int, ...]] = {}  # keyword -> indices of the rules that name it
for _index, _rule in enumerate(RULES):
    for _keyword in _rule.keywords:
        KEYWORDS[_keyword] = (*KEYWORDS.get(_keyword, ()), _index)


def confirmed(rule: Rule, match: re.Match[str]) -> tuple[int, int] | None:
    """The secret's span in a match of `rule` (its first group that took part, or the match) when
    it reaches the rule's entropy and is no placeholder and not allowed by the rule."""
    span = next((match.span(group) for group in range(1, (match.re.groups or 0) + 1)
                 if match.start(group) != -1), match.span())
    secret = match.string[span[0]:span[1]]
    if not secret or is_placeholder(secret) or (rule.allow is not None and rule.allow.fullmatch(secret)):
        return None
    if rule.entropy and shannon_entropy(secret) < rule.entropy:
        return None
    return span


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


def loose_patterns() -> list[bytes]:
    """Each rule's regex for the Hyperscan prefilter (compiled in its prefilter mode)."""
    return [_unanchored(rule.regex).encode() for rule in RULES]
