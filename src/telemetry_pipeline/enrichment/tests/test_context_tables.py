from __future__ import annotations

from pathlib import Path

import pytest

from telemetry_pipeline.enrichment import UserDirectory, load_context_file
from telemetry_pipeline.enrichment.tests.builders import KEY
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer


def test_context_file_later_lines_win_and_null_deletes(tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    path.write_text(
        '{"key": "u1", "value": {"tenant": "acme", "plan": "free"}}\n'
        "\n"
        '{"key": "u2", "value": {"tenant": "globex"}}\n'
        '{"key": "u1", "value": {"tenant": "acme", "plan": "gold"}}\n'
        '{"key": "u2", "value": null}\n',
        encoding="utf-8",
    )
    assert load_context_file(path) == {"u1": {"tenant": "acme", "plan": "gold"}}


@pytest.mark.parametrize("line", ['{"value": {}}', "not json", '{"key": "u1", "value": [1]}'])
def test_context_file_errors_name_the_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"key": "ok", "value": {}}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_context_file(path)


def test_user_directory_indexes_by_pseudonym_before_and_after_binding() -> None:
    pseudonymize = Pseudonymizer(KEY)
    users = UserDirectory()
    users.load({"u1": {"plan": "gold"}})
    assert users.by_pseudonym(pseudonymize("u1")) is None  # not bound yet
    users.bind(pseudonymize)
    assert users.by_pseudonym(pseudonymize("u1")) == {"plan": "gold"}

    users.update("u2", {"plan": "free"})
    assert users.by_pseudonym(pseudonymize("u2")) == {"plan": "free"}
    users.update("u1", None)
    assert users.get("u1") is None
    assert users.by_pseudonym(pseudonymize("u1")) is None
    assert list(users) == ["u2"]
    assert len(users) == 1
