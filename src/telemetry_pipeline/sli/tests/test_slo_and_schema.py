import pytest
from pydantic import ValidationError

from telemetry_pipeline.sli import SliConfig, SloConfig, SloDefaults, SloResolver, render_sli_schema
from telemetry_pipeline.sli.config import duration_ms
from telemetry_pipeline.sli.snapshot import SCHEMA_PATH


def test_committed_schema_is_the_generated_one() -> None:
    # Regenerate with: python -c "from telemetry_pipeline.sli import write_sli_schema; write_sli_schema()"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_sli_schema()


def test_slo_resolution_order_is_catalog_then_config_then_defaults() -> None:
    catalog = {"checkout": {"owner": "payments", "slo": {"availability": 99.95}}, "cart": {"slo": "bad"}}
    resolver = SloResolver(
        [SloConfig(service="checkout", availability=99.9, latency={"threshold_ms": 300, "objective": 99.0})],
        SloDefaults(availability=99.5, period="30d"),
        catalog,
    )
    checkout = resolver.slo_for("checkout")
    assert checkout.availability == pytest.approx(0.9995)  # the catalog's override
    assert (checkout.latency_threshold_ms, checkout.latency_objective) == (300, pytest.approx(0.99))
    assert (checkout.period, checkout.period_ms) == ("30d", 30 * 86_400_000)
    other = resolver.slo_for("cart")
    assert other.availability == pytest.approx(0.995)
    assert other.latency_threshold_ms == SloDefaults().latency.threshold_ms


def test_invalid_catalog_overrides_are_ignored_and_counted() -> None:
    catalog = {"checkout": {"slo": {"availability": 150}}}
    resolver = SloResolver([], SloDefaults(), catalog, max_period_ms=duration_ms("30d"))
    assert resolver.slo_for("checkout").availability == pytest.approx(0.995)
    catalog["checkout"] = {"slo": {"period": "90d"}}  # longer than the SLI stage keeps
    assert resolver.slo_for("checkout").period == "30d"
    assert resolver.invalid_overrides == 2


def test_the_contract_yaml_keys_validate() -> None:
    SloConfig.model_validate(
        {
            "service": "checkout",
            "availability": 99.9,
            "latency": {"threshold_ms": 300, "objective": 99.0},
            "period": "30d",
        }
    )
    SloDefaults.model_validate({"availability": 99.5, "period": "30d"})
    with pytest.raises(ValidationError):
        SloConfig.model_validate({"service": "checkout", "availability": 100})
    with pytest.raises(ValidationError):
        SloDefaults.model_validate({"period": "30 days"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"evaluation_step": "90s"},  # not a multiple of the 1m buckets
        {"allowed_lateness": "2h"},  # late data would miss the finest tier
        {"windows": ["60d"]},  # longer than kept
        {"bucket_tiers": [{"size": "1m", "until": "1h"}, {"size": "7m", "until": "6h"}]},
        {"bucket_tiers": []},
        {"unknown": 1},
    ],
)
def test_inconsistent_sli_config_is_refused(overrides: dict) -> None:
    with pytest.raises(ValidationError):
        SliConfig.model_validate(overrides)
