"""Pytest fixtures for tests that need the real broker; both `tests/conftest.py` and this package's
conftest import them, and they share one broker per test session.

`kafka_bootstrap` starts a broker on a free port with a temporary data dir, or uses the one named by
``TP_TEST_BOOTSTRAP``. `kafka_secure` is a broker with TLS and SASL_SSL (SCRAM) listeners too: the
session's own, which gets them when a collected test asks for it, else one started for it. The
broker is stopped at the end of the session, on failure, on ^C, on SIGTERM/SIGHUP (turned into
KeyboardInterrupt so that teardown runs) and, failing all that, by the kernel when the test process
dies (`broker.running`).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import pytest

from telemetry_pipeline.kafka import broker, topics

TEST_BOOTSTRAP_ENV = "TP_TEST_BOOTSTRAP"


class _SessionBroker:
    """One broker for however many conftests ask for it; stopped when the last one lets go."""

    def __init__(self) -> None:
        self._users = 0
        self._stack = ExitStack()
        self.broker: broker.Broker | None = None

    def acquire(self, tmp_path_factory: pytest.TempPathFactory, secure: bool) -> str:
        if self._users == 0:
            with ExitStack() as stack:  # undone at once if the broker fails to start
                stack.enter_context(_interrupt_on_termination())
                data_dir = tmp_path_factory.mktemp("kafka")
                self.broker = stack.enter_context(broker.running(data_dir=data_dir, secure=secure))
                self._stack = stack.pop_all()
        self._users += 1
        assert self.broker is not None
        return self.broker.bootstrap

    def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._stack.close()


_SESSION_BROKER = _SessionBroker()


@contextmanager
def _interrupt_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so pytest tears fixtures down instead of dying."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    external = os.environ.get(TEST_BOOTSTRAP_ENV)
    if external:
        yield external
        return
    # The TLS keystore costs a few seconds of keytool: only when a test will use it.
    secure = any("kafka_secure" in getattr(item, "fixturenames", ()) for item in request.session.items)
    bootstrap = _SESSION_BROKER.acquire(tmp_path_factory, secure)
    try:
        yield bootstrap
    finally:
        _SESSION_BROKER.release()


@pytest.fixture(scope="session")
def kafka_secure(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.Broker]:
    """A broker whose `secure` listeners (TLS; SASL_SSL with a SCRAM user) are set; its PLAINTEXT
    `bootstrap` serves the test's own set-up and checks."""
    session = _SESSION_BROKER.broker
    if session is not None and session.bootstrap == kafka_bootstrap and session.secure is not None:
        yield session
        return
    with _interrupt_on_termination(), broker.running(data_dir=tmp_path_factory.mktemp("kafka-secure"),
                                                     secure=True) as own:
        yield own


FreshTopics = Callable[..., dict[str, str]]


@pytest.fixture
def fresh_topics(kafka_bootstrap: str) -> Iterator[FreshTopics]:
    """`fresh_topics(names, partitions)` creates topics unique to this test: {name: unique name}.

    They are deleted when the test ends, so tests never see each other's records.
    """
    created: list[str] = []

    def create(names: Sequence[str], partitions: int = 1) -> dict[str, str]:
        prefix = f"test-{uuid.uuid4().hex[:10]}-"
        specs = [topics.TopicSpec(name=name, partitions=partitions) for name in names]
        topics.apply(kafka_bootstrap, specs, name_prefix=prefix)
        unique = {name: prefix + name for name in names}
        created.extend(unique.values())
        return unique

    yield create
    topics.delete_topics(kafka_bootstrap, created)
