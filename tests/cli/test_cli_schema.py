"""`human chat --schema` end to end (a real subprocess) against the fake server, made to
honour or ignore response_format (tests/fakes/quirky_model.py): the concise field list,
a JSON Schema file or inline, --schema-multi, the exit codes and what reaches stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from human.structured.concise import concise_schema
from tests.cli.test_cli import CANARY, human
from tests.fakes.quirky_model import ADA, QuirkyModel


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "test-model",
                                "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                                "reliability": {"provider_retries": 0}}))
    os.chmod(file, 0o600)
    return file


def test_concise_fields_print_the_validated_object(fake, cfg):
    fake.respond(QuirkyModel()).as_default()
    result = human("chat", "--config", str(cfg), "--schema", "name str, age int", "Ada Lovelace, 36")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ADA
    schema = fake.last.json["response_format"]["json_schema"]["schema"]
    assert schema == concise_schema("name str, age int")


def test_a_server_that_ignores_response_format_still_gives_the_object(fake, cfg):
    model = QuirkyModel(ignores={"json_schema", "json_object"}, dress=lambda text: f"Sure:\n```json\n{text}\n```")
    fake.respond(model).as_default()
    result = human("chat", "--config", str(cfg), "--schema", "name, age int", "--usage", "Ada")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ADA
    assert model.seen == ["prose", "prompted"]
    assert "usage: prompt 20, completion 10, total 30" in result.stderr  # both requests


def test_schema_multi_prints_an_array(fake, cfg):
    fake.respond(QuirkyModel(answer={"items": [ADA, {"name": "Alan", "age": 41}]})).as_default()
    result = human("chat", "--config", str(cfg), "--schema", "name, age int", "--schema-multi", "two people")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [ADA, {"name": "Alan", "age": 41}]
    sent = fake.last.json["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["items"]["type"] == "array"


def test_a_json_schema_file_and_inline_json(fake, cfg, tmp_path):
    fake.respond(QuirkyModel(answer={"city": "Oslo"})).as_default()
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    path = tmp_path / "city.json"
    path.write_text(json.dumps(schema))
    for value in (str(path), json.dumps(schema)):
        result = human("chat", "--config", str(cfg), "--schema", value, "--json", "where?")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["parsed"] == {"city": "Oslo"} and data["content"] == '{"city": "Oslo"}'
        assert data["adjustments"][0].startswith("structured output: json_schema mode")


def test_dry_run_shows_the_structured_request(fake, cfg):
    result = human("chat", "--config", str(cfg), "--schema", "name", "--dry-run", "x")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)["body"]
    assert body["response_format"]["type"] == "json_schema" and fake.requests == []


@pytest.mark.parametrize(("args", "message"), [
    (["--schema", "name blob", "x"], "unknown type 'blob'"),
    (["--schema", "missing.json", "x"], "--schema: cannot read missing.json"),
    (["--schema", "{not json", "x"], "the inline --schema is not valid JSON"),
    (["--schema-multi", "x"], "--schema-multi needs --schema"),
])
def test_bad_schema_arguments_exit_2_before_sending(fake, cfg, args, message):
    result = human("chat", "--config", str(cfg), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert fake.requests == []


def test_no_answer_that_fits_exits_1_with_one_line(fake, cfg):
    fake.completion("no json at all").as_default()
    result = human("chat", "--config", str(cfg), "--schema", "name, age int", "Ada")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("human: error: no answer fitted the schema 'response' after 3 attempt(s)")
    assert line.endswith("— a simpler schema or another model may fit (--debug shows each answer)")
    assert "max_retries" not in line  # the library's advice is not the command's
    debug = human("chat", "--config", str(cfg), "--schema", "name, age int", "--debug", "Ada")
    assert "  3. [prompt] $: no JSON object was found in the answer" in debug.stderr


def test_concise_schema_syntax():
    assert concise_schema("name, age int, bio: a short bio") == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "bio": {"type": "string", "description": "a short bio"}},
        "required": ["name", "age", "bio"], "additionalProperties": False}
    assert concise_schema("score float: 0 to 1, inclusive\nok bool")["properties"] == {
        "score": {"type": "number", "description": "0 to 1, inclusive"}, "ok": {"type": "boolean"}}
    with pytest.raises(ValueError, match="appears twice"):
        concise_schema("a, a")
    with pytest.raises(ValueError, match="no fields"):
        concise_schema(" , ")
