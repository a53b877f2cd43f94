"""The detectors: each reads one evaluation step's SLI snapshots (and, for pii_leak, redaction notes)
and reports the conditions that hold now. Pure and deterministic; state is plain JSON.

A detector reports a `Finding` for a condition that fires, and, for an incident already open, for
one that still holds by its (lower) clear threshold: that gap is the hysteresis. The incident
manager turns findings into trigger / update / resolve.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from telemetry_pipeline.detection.config import (
    SEVERITY_RANK,
    BaselinedConfig,
    CardinalityExplosionConfig,
    CompletenessDropConfig,
    DetectorConfig,
    ErrorRateSpikeConfig,
    LatencyRegressionConfig,
    PiiLeakConfig,
    SloBurnRateConfig,
    TelemetryGapConfig,
)
from telemetry_pipeline.sli.config import duration_ms
from telemetry_pipeline.sli.partials import SliPartial
from telemetry_pipeline.sli.slo import SloResolver
from telemetry_pipeline.sli.snapshot import SliSnapshot

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
_SIGNALS = ("traces", "metrics", "logs")


@dataclass(slots=True)
class Finding:
    type: str
    service: str
    subject: str  # the objective or signal: part of the incident's dedup_key
    severity: str
    routing: str
    value: float  # the number whose material change is worth an update
    summary: str
    evidence: dict[str, Any]
    started_ms: int | None = None  # when the condition began, if earlier than this step


@dataclass(slots=True)
class Step:
    """One evaluation step: its end (event time) and each service's snapshots by window label."""

    end_ms: int
    services: dict[str, dict[str, SliSnapshot]]
    open_keys: Collection[str] = ()  # dedup keys of open incidents, for the clear thresholds

    def is_open(self, type_: str, service: str, subject: str) -> bool:
        return dedup_key(type_, service, subject) in self.open_keys


def dedup_key(type_: str, service: str, subject: str) -> str:
    return f"{type_}/{service}/{subject}"


class _Confirmations:
    """Per key, whether the condition held in each of the last `of` steps."""

    def __init__(self, confirm: int, of: int) -> None:
        self._confirm, self._of = confirm, of
        self.recent: dict[str, list[int]] = {}

    def retain(self, keep: Callable[[str], bool]) -> None:
        self.recent = {key: recent for key, recent in self.recent.items() if keep(key)}

    def record(self, key: str, held: bool) -> bool:
        """Record this step; True when the condition held in `confirm` of the last `of` steps."""
        recent = self.recent.setdefault(key, [])
        recent.append(int(held))
        del recent[: -self._of]
        if not any(recent):
            del self.recent[key]
            return False
        return held and sum(recent) >= self._confirm


class _Baselines:
    """Per key, samples of a value's recent past taken while the detector is quiet: median and MAD."""

    def __init__(self, config: BaselinedConfig) -> None:
        self._every_ms = duration_ms(config.sample_every)
        self._keep = config.samples
        self._min = config.min_samples
        self.samples: dict[str, list] = {}  # key -> [last sample ms, [values...]]

    def retain(self, keep: Callable[[str], bool]) -> None:
        self.samples = {key: entry for key, entry in self.samples.items() if keep(key)}

    def add(self, key: str, value: float, now_ms: int) -> None:
        entry = self.samples.setdefault(key, [None, []])
        if entry[0] is not None and now_ms - entry[0] < self._every_ms:
            return
        entry[0] = now_ms
        entry[1].append(value)
        del entry[1][: -self._keep]

    def of(self, key: str) -> tuple[float, float] | None:
        """(median, MAD) once there are enough samples."""
        values = self.samples.get(key, [None, []])[1]
        if len(values) < self._min:
            return None
        median = statistics.median(values)
        return median, statistics.median(abs(v - median) for v in values)


class _Reporting:
    """A detector whose findings all go where its config says (routing, severity)."""

    name: str
    _config: DetectorConfig

    def _finding(
        self,
        service: str,
        subject: str,
        value: float,
        summary: str,
        evidence: dict[str, Any],
        started_ms: int | None = None,
    ) -> Finding:
        config = self._config
        return Finding(
            self.name, service, subject, config.severity, config.routing, value, summary, evidence, started_ms
        )


class _Baselined(_Reporting):
    """A detector that compares a value with the service's own baseline, confirmed N of M steps: the
    baselines and confirmations are its whole state, keyed by service (or `<service>/<subject>`)."""

    _config: BaselinedConfig

    def __init__(self, config: BaselinedConfig) -> None:
        self._config = config
        self._baselines = _Baselines(config)
        self._confirmations = _Confirmations(config.confirm, config.of)

    @staticmethod
    def _service_of(key: str) -> str:
        return key

    def retain(self, services: Collection[str]) -> None:
        """Forget services the engine no longer evaluates (expired, or moved to another worker)."""
        self._baselines.retain(lambda key: self._service_of(key) in services)
        self._confirmations.retain(lambda key: self._service_of(key) in services)

    def state(self) -> dict:
        return {"baselines": self._baselines.samples, "recent": self._confirmations.recent}

    def restore(self, state: dict) -> None:
        self._baselines.samples = state["baselines"]
        self._confirmations.recent = state["recent"]


class SloBurnRate:
    """Multi-window, multi-burn-rate alerts on each objective of services with an SLO of their own."""

    name = "slo_burn_rate"

    def __init__(self, config: SloBurnRateConfig, slos: SloResolver) -> None:
        self._config = config
        self._slos = slos
        self._reference_ms = duration_ms(config.reference_period)

    def observe(self, step: Step) -> list[Finding]:
        findings = []
        for service, windows in step.services.items():
            explicit = self._slos.explicit_objectives(service)
            if not explicit:
                continue
            slo = self._slos.slo_for(service)
            scale = slo.period_ms / self._reference_ms
            any_snapshot = next(iter(windows.values()))
            objectives = [("availability", any_snapshot.burn_rate, slo.availability)]
            if self._config.latency and "latency" in explicit:
                objectives.append(("latency", any_snapshot.latency_burn_rate, slo.latency_objective))
            for objective, rates, target in objectives:
                findings.extend(self._evaluate(service, objective, rates, target, windows, scale))
        return findings

    def _evaluate(
        self,
        service: str,
        objective: str,
        rates: Mapping[str, float],
        target: float,
        windows: Mapping[str, SliSnapshot],
        scale: float,
    ) -> list[Finding]:
        config = self._config
        firing: dict[str, tuple] = {}  # routing -> the most severe firing row
        for alert in config.alerts:
            factor = alert.factor * scale
            long, short = windows.get(alert.long), windows.get(alert.short)
            if long is None or short is None or alert.long not in rates or alert.short not in rates:
                continue
            bad = _bad(long, objective)
            if (
                rates[alert.long] >= factor
                and rates[alert.short] >= factor
                and long.requests >= config.min_requests
                and bad >= config.min_bad
                and _bad(short, objective) >= config.min_bad_short
            ):
                best = firing.get(alert.routing)
                if best is None or SEVERITY_RANK[alert.severity] > SEVERITY_RANK[best[0].severity]:
                    firing[alert.routing] = (alert, factor, long.requests, bad)
        findings = []
        for routing, (alert, factor, requests, bad) in sorted(firing.items()):
            findings.append(
                Finding(
                    type=self.name,
                    service=service,
                    subject=f"{objective}:{routing}",
                    severity=alert.severity,
                    routing=routing,
                    value=rates[alert.long],
                    summary=(
                        f"{service}: {objective} error budget burning at {rates[alert.long]:g}x over "
                        f"{alert.long} and {rates[alert.short]:g}x over {alert.short} "
                        f"(alert at {factor:g}x, objective {target:.4%})"
                    ),
                    evidence={
                        "objective": objective,
                        "target": round(target, 6),
                        "burn_rate": dict(rates),
                        "alert": {"long": alert.long, "short": alert.short, "factor": round(factor, 6)},
                        "requests": requests,
                        "bad": bad,
                    },
                )
            )
        return findings


def _bad(snapshot: SliSnapshot, objective: str) -> int:
    if objective == "availability":
        return snapshot.errors
    return round(snapshot.requests * (1 - (snapshot.latency_good_ratio or 1.0)))


class ErrorRateSpike(_Baselined):
    """Error rate far above the service's own baseline, for services without an SLO of their own."""

    name = "error_rate_spike"
    _config: ErrorRateSpikeConfig

    def __init__(self, config: ErrorRateSpikeConfig, slos: SloResolver) -> None:
        self._slos = slos
        super().__init__(config)

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        for service, windows in step.services.items():
            snapshot = windows.get(config.window)
            if snapshot is None or self._slos.explicit_objectives(service):
                continue
            rate = snapshot.error_rate or 0.0
            enough = snapshot.requests >= config.min_requests
            baseline = self._baselines.of(service)
            is_open = step.is_open(self.name, service, "errors")
            fires = (
                baseline is not None
                and enough
                and snapshot.errors >= config.min_errors
                and rate >= max(baseline[0] * config.ratio, baseline[0] + config.min_increase)
            )
            confirmed = self._confirmations.record(service, fires)
            holds = baseline is not None and enough and rate >= baseline[0] + config.clear_increase
            if confirmed or (is_open and holds):
                assert baseline is not None
                findings.append(
                    self._finding(
                        service,
                        "errors",
                        value=rate,
                        summary=f"{service}: error rate {rate:.2%} over {config.window}, "
                        f"baseline {baseline[0]:.2%} ({snapshot.errors} of {snapshot.requests} requests)",
                        evidence={
                            "error_rate": rate,
                            "baseline": round(baseline[0], 6),
                            "window": config.window,
                            "errors": snapshot.errors,
                            "requests": snapshot.requests,
                        },
                    )
                )
            elif enough and not fires and not is_open:
                self._baselines.add(service, rate, step.end_ms)
        return findings


class LatencyRegression(_Baselined):
    """p95 (or p99) far above the median of the service's own recent past, confirmed N of M steps."""

    name = "latency_regression"
    _config: LatencyRegressionConfig

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        subject = f"latency_{config.quantile}"
        for service, windows in step.services.items():
            snapshot = windows.get(config.window)
            if snapshot is None:
                continue
            value = getattr(snapshot.latency_ms, config.quantile)
            enough = value is not None and snapshot.requests >= config.min_requests
            baseline = self._baselines.of(service)
            is_open = step.is_open(self.name, service, subject)
            fires = False
            if enough and baseline is not None:
                median, mad = baseline
                fires = (
                    value >= median * config.ratio
                    and value >= median + config.mad_factor * _MAD_TO_SIGMA * mad
                    and value - median >= config.min_increase_ms
                )
            confirmed = self._confirmations.record(service, fires)
            holds = (
                enough
                and baseline is not None
                and value >= baseline[0] * config.clear_ratio
                and value - baseline[0] >= config.min_increase_ms / 2
            )
            if confirmed or (is_open and holds):
                assert baseline is not None and value is not None
                findings.append(
                    self._finding(
                        service,
                        subject,
                        value=value,
                        summary=f"{service}: {config.quantile} latency {value:g} ms over {config.window}, "
                        f"against its baseline of {baseline[0]:g} ms",
                        evidence={
                            "quantile": config.quantile,
                            "value_ms": value,
                            "baseline_ms": round(baseline[0], 3),
                            "baseline_mad_ms": round(baseline[1], 3),
                            "window": config.window,
                            "requests": snapshot.requests,
                        },
                    )
                )
            elif enough and not fires and not is_open:
                assert value is not None
                self._baselines.add(service, value, step.end_ms)
        return findings


class _PerService(_Reporting):
    """A detector whose whole state is what it knows of each service (`services`, plain JSON)."""

    services: dict[str, Any]

    def retain(self, services: Collection[str]) -> None:
        """Forget services the engine no longer evaluates (expired, or moved to another worker)."""
        self.services = {service: known for service, known in self.services.items() if service in services}

    def state(self) -> dict:
        return {"services": self.services}

    def restore(self, state: dict) -> None:
        self.services = state["services"]


class TelemetryGap(_PerService):
    """A service that was sending goes silent: nothing in the window while its recent request rate
    makes `min_expected` requests expected over the silence."""

    name = "telemetry_gap"

    def __init__(self, config: TelemetryGapConfig) -> None:
        self._config = config
        self._window_ms = duration_ms(config.window)
        # service -> [last step with data, requests/s then (baseline window), first step without]
        self.services: dict[str, list] = {}

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        for service, windows in step.services.items():
            snapshot = windows.get(config.window)
            if snapshot is None:
                continue
            known = self.services.get(service)
            completeness = snapshot.completeness
            if completeness.traces or completeness.metrics or completeness.logs:
                baseline = windows.get(config.baseline_window)
                rate = baseline.throughput_rps if baseline is not None else snapshot.throughput_rps
                self.services[service] = [step.end_ms, rate, None]
                continue
            if known is None:
                continue
            if known[2] is None:
                known[2] = step.end_ms
            silent_ms = self._window_ms + step.end_ms - known[2]
            expected = known[1] * silent_ms / 1000
            if expected >= config.min_expected:
                findings.append(
                    self._finding(
                        service,
                        "all",
                        value=known[1],  # the rate it stopped from: a longer silence is no news
                        summary=f"{service}: no spans, metrics or logs for {silent_ms // 60_000} min; "
                        f"about {expected:.0f} requests were expected at its recent rate",
                        evidence={
                            "silent_minutes": round(silent_ms / 60_000, 1),
                            "recent_rps": known[1],
                            "expected_requests": round(expected, 1),
                        },
                        started_ms=known[2] - self._window_ms,
                    )
                )
        return findings


class CompletenessDrop(_PerService):
    """A signal the service always sent is missing for `missing_steps` while others go on, or the
    completeness score falls well below its own average."""

    name = "completeness_drop"

    def __init__(self, config: CompletenessDropConfig) -> None:
        self._config = config
        # service -> {"steps": n, "score": EWMA, "low": steps below, signal: [presence EWMA, missing steps]}
        self.services: dict[str, dict] = {}

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        alpha = config.presence_alpha
        for service, windows in step.services.items():
            snapshot = windows.get(config.window)
            if snapshot is None:
                continue
            completeness = snapshot.completeness
            present = {signal: getattr(completeness, signal) for signal in _SIGNALS}
            if not any(present.values()):
                continue  # the whole service is silent: telemetry_gap's business
            known = self.services.setdefault(
                service,
                {
                    "steps": 0,
                    "score": completeness.score,
                    "low": 0,
                    **{signal: [float(present[signal]), 0] for signal in _SIGNALS},
                },
            )
            known["steps"] += 1
            established_steps = known["steps"] >= config.min_steps
            missing_signals = []
            for signal in _SIGNALS:
                presence = known[signal]
                if present[signal]:
                    if 0 < presence[1] < config.missing_steps:  # a short absence counts against it
                        presence[0] *= (1 - alpha) ** presence[1]
                    presence[0] = presence[0] * (1 - alpha) + alpha
                    presence[1] = 0
                    continue
                presence[1] += 1
                if (
                    established_steps
                    and presence[0] >= config.established
                    and presence[1] >= config.missing_steps
                ):
                    missing_signals.append(signal)
                    findings.append(
                        self._finding(
                            service,
                            signal,
                            value=presence[1],
                            summary=f"{service}: no {signal} for {presence[1]} evaluation steps while its "
                            f"other signals go on (completeness score {completeness.score:g})",
                            evidence={
                                "signal": signal,
                                "missing_steps": presence[1],
                                "presence_before": round(presence[0], 4),
                                "score": completeness.score,
                            },
                        )
                    )
            findings.extend(
                self._score(step, service, known, completeness.score, missing_signals, established_steps)
            )
        return findings

    def _score(
        self, step: Step, service: str, known: dict, score: float, missing: list[str], established: bool
    ) -> list[Finding]:
        config = self._config
        is_open = step.is_open(self.name, service, "score")
        drop = known["score"] - score
        fires = established and not missing and drop >= config.score_drop
        known["low"] = known["low"] + 1 if fires else 0
        if known["low"] >= config.missing_steps or (is_open and drop >= config.score_drop / 2):
            return [
                self._finding(
                    service,
                    "score",
                    value=score,
                    summary=f"{service}: completeness score {score:g}, {drop:.0f} points below its usual "
                    f"{known['score']:.0f}",
                    evidence={
                        "score": score,
                        "usual_score": round(known["score"], 2),
                        "window": config.window,
                    },
                )
            ]
        if not fires and not is_open:
            known["score"] += config.presence_alpha * (score - known["score"])
        return []


class PiiLeak(_Reporting):
    """Credentials or payment data the redactor found in a service's telemetry, counted by detector
    (never a value), each message once however often it is redelivered."""

    name = "pii_leak"

    def __init__(self, config: PiiLeakConfig) -> None:
        self._config = config
        self._window_ms = duration_ms(config.window)
        self._detectors = frozenset(config.detectors)
        # service -> message ("source@offset") -> [event ms, {detector: count}], for the window. Past
        # `max_messages` a service's notes are merged per minute ("@<minute ms>") without telling
        # redeliveries apart: by then the count is far past any threshold.
        self.notes: dict[str, dict[str, list]] = {}

    def note(self, partial: SliPartial) -> None:
        found = {name: n for name, n in partial.redactions.items() if name in self._detectors}
        if not found:
            return
        messages = self.notes.setdefault(partial.service, {})
        key = f"{partial.source}@{partial.offset}"
        if key in messages:
            return  # the same message again (redelivered)
        if partial.offset < 0 or len(messages) >= self._config.max_messages:
            minute_ms = partial.max_time_ms - partial.max_time_ms % 60_000
            spilled = messages.setdefault(f"@{minute_ms}", [minute_ms, {}])[1]
            for name, count in found.items():
                spilled[name] = spilled.get(name, 0) + count
            return
        messages[key] = [partial.max_time_ms, found]

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        since = step.end_ms - self._window_ms
        for service in sorted(self.notes):
            # Kept while in the window: a redelivery of a message older than that no longer counts anyway.
            notes = {key: note for key, note in self.notes[service].items() if note[0] > since}
            self.notes[service] = notes
            counts: dict[str, int] = {}
            for time_ms, found in notes.values():
                if time_ms <= step.end_ms:
                    for name, count in found.items():
                        counts[name] = counts.get(name, 0) + count
            if not notes:
                del self.notes[service]
            total = sum(counts.values())
            if total >= config.min_count or (total and step.is_open(self.name, service, "pii")):
                kinds = ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))
                findings.append(
                    self._finding(
                        service,
                        "pii",
                        value=total,
                        summary=f"{service}: credentials or payment data in its telemetry over the last "
                        f"{config.window} ({kinds}); the pipeline redacted them",
                        evidence={"counts": dict(sorted(counts.items())), "window": config.window},
                    )
                )
        return findings

    def retain(self, services: Collection[str]) -> None:
        """Notes are bounded by time (the window) instead: they may come before a service's first step."""

    def state(self) -> dict:
        return {"notes": self.notes}

    def restore(self, state: dict) -> None:
        self.notes = state["notes"]


class CardinalityExplosion(_Baselined):
    """Distinct span names or attribute keys past a bound or a multiple of the service's baseline."""

    name = "cardinality_explosion"
    _config: CardinalityExplosionConfig

    def observe(self, step: Step) -> list[Finding]:
        config, findings = self._config, []
        bounds = {"span_names": config.span_names_bound, "attribute_keys": config.attribute_keys_bound}
        for service, windows in step.services.items():
            snapshot = windows.get(config.window)
            if snapshot is None or snapshot.cardinality is None:
                continue
            for subject, bound in bounds.items():
                value = getattr(snapshot.cardinality, subject)
                key = f"{service}/{subject}"
                baseline = self._baselines.of(key)
                median = baseline[0] if baseline is not None else None
                fires = value > bound or (
                    median is not None
                    and value >= median * config.factor
                    and value - median >= config.min_increase
                )
                confirmed = self._confirmations.record(key, fires)
                is_open = step.is_open(self.name, service, subject)
                holds = value > bound or (
                    median is not None
                    and value >= median * (1 + config.factor) / 2
                    and value - median >= config.min_increase / 2
                )
                if confirmed or (is_open and holds):
                    findings.append(
                        self._finding(
                            service,
                            subject,
                            value=value,
                            summary=f"{service}: about {value} distinct {subject.replace('_', ' ')} over "
                            f"{config.window}"
                            + (f", baseline {median:g}" if median is not None else f", bound {bound}"),
                            evidence={
                                "value": value,
                                "baseline": median,
                                "bound": bound,
                                "window": config.window,
                            },
                        )
                    )
                elif not fires and not is_open and snapshot.requests >= config.min_requests:
                    self._baselines.add(key, value, step.end_ms)
        return findings

    @staticmethod
    def _service_of(key: str) -> str:
        return key.rpartition("/")[0]


@dataclass
class Versions:
    """Per service, each `service.version` seen with its first event time (ms): deploy correlation."""

    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    keep: int = 8  # versions per service
    max_services: int = 10_000  # past this, the service whose newest version is oldest is forgotten

    def note(self, partial: SliPartial) -> None:
        if not partial.versions:
            return
        if partial.service not in self.seen and len(self.seen) >= self.max_services:
            del self.seen[min(self.seen, key=lambda service: max(self.seen[service].values()))]
        versions = self.seen.setdefault(partial.service, {})
        for version, first_ms in partial.versions.items():
            if version not in versions or first_ms < versions[version]:
                versions[version] = first_ms
        if len(versions) > self.keep:
            for version, _ in sorted(versions.items(), key=lambda item: item[1])[: len(versions) - self.keep]:
                del versions[version]

    def deploy_before(self, service: str, time_ms: int, lookback_ms: int) -> dict[str, Any] | None:
        """The newest version change of the service in the `lookback_ms` up to `time_ms`."""
        ordered = sorted(self.seen.get(service, {}).items(), key=lambda item: (item[1], item[0]))
        ordered = [item for item in ordered if item[1] <= time_ms]
        if len(ordered) < 2 or time_ms - ordered[-1][1] > lookback_ms:
            return None
        (old, _), (new, at_ms) = ordered[-2], ordered[-1]
        return {"old_version": old, "new_version": new, "at_ms": at_ms}
