"""Enrichment coverage and cost on `generate` traffic: `.venv/bin/python benchmarks/enrichment.py`.

Coverage: every message goes through learn -> enrich, held in a HoldBuffer when its trace's root
has not been seen, on the messages' own event-time clock (as the worker would, with its wall clock).
Cost: spans per CPU second of learn + enrich on decoded ~500-span trace messages, next to protobuf
decode + encode of the same messages, so the figure reads as a ratio on any machine (CPU time: the
machine may be shared).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import timedelta

from telemetry_pipeline.enrichment import Enricher, EnrichmentConfig, HoldBuffer, UserDirectory
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Message, Signal
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer


@dataclass
class _Item:
    signal: Signal
    message: Message


def _enricher(config: EnrichmentConfig, generator: GeneratorConfig) -> Enricher:
    users_table, services = context_records(generator)
    users = UserDirectory()
    users.load(users_table)
    return Enricher(config, {}, users, services, Pseudonymizer(b"bench-key-0123456789"))


def coverage(config: EnrichmentConfig, generator: GeneratorConfig) -> dict[str, float]:
    enricher = _enricher(config, generator)
    held: HoldBuffer[_Item] = HoldBuffer(config)
    generated_messages = (m for m in iter_messages(generator) if not m.is_garbage)
    messages = sorted(generated_messages, key=lambda m: m.event_time_ns)
    for generated in messages:
        now_ms = generated.event_time_ns // 1_000_000
        item = _Item(generated.signal, generated.message)
        enricher.learn(item.signal, item.message, now_ms)
        for ready in [*held.take_ready(now_ms, enricher), item]:
            if not enricher.enrich(ready.signal, ready.message, final=False):
                held.hold(ready, now_ms)
    for ready in held.take_ready(0, enricher, everything=True):
        enricher.enrich(ready.signal, ready.message, final=True)
    return {**enricher.stats().as_dict(), **{f"hold_{k}": v for k, v in vars(held.counters).items()}}


def cost(config: EnrichmentConfig, generator: GeneratorConfig, rounds: int) -> dict[str, float]:
    payloads = [m.payload for m in iter_messages(generator) if m.signal is Signal.TRACES and not m.is_garbage]
    message_type = Signal.TRACES.message_type
    enricher = _enricher(config, generator)
    spans = enrich_s = codec_s = 0.0
    for _ in range(rounds):
        start = time.process_time()
        messages = [message_type.FromString(payload) for payload in payloads]
        codec_s += time.process_time() - start
        spans += sum(len(ss.spans) for m in messages for rs in m.resource_spans for ss in rs.scope_spans)
        start = time.process_time()
        for number, (payload, message) in enumerate(zip(payloads, messages, strict=True)):
            enricher.learn(Signal.TRACES, message, number)
            enricher.enrich(Signal.TRACES, message, final=True, payload=payload)
        enrich_s += time.process_time() - start
        start = time.process_time()
        for message in messages:
            message.SerializeToString()
        codec_s += time.process_time() - start
    return {
        "messages": len(payloads) * rounds,
        "spans": spans,
        "enrich_spans_per_s": spans / enrich_s,
        "decode_encode_spans_per_s": spans / codec_s,
        "enrich_cost_vs_decode_encode": enrich_s / codec_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="event time of generated traffic")
    parser.add_argument("--split-traces", type=float, default=0.1, help="share of roots sent later")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    generator = GeneratorConfig(duration=timedelta(seconds=args.seconds), split_traces=args.split_traces)
    config = EnrichmentConfig()
    for name, figures in (("coverage", coverage(config, generator)),
                          ("cost", cost(config, generator, args.rounds))):
        print(name)
        for key, value in figures.items():
            print(f"  {key:36} {value:,.3f}" if isinstance(value, float) else f"  {key:36} {value:,}")


if __name__ == "__main__":
    main()
