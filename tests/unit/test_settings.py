"""Settings come from the environment with the documented names and defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.settings import STACK_PORTS_FILE, Settings, SettingsError, check_removed

README = Path(__file__).resolve().parents[2] / "docs" / "operations.md"  # the settings table


def env_name(field: str) -> str:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if alias is not None:
        return str(alias.choices[0])  # type: ignore[union-attr]
    return f"CREATOR_SCORES_{field.upper()}"


def test_plain_names_for_kafka_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9093")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("CREATOR_SCORES_BATCH_SIZE", "123")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "broker-1:9093"
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.batch_size == 123


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    # A stack folder with no ports recorded: the repository's own `.stack/` may hold some
    # (its stack moved off default ports another process held, as on a shared machine).
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.source_topics == ("posts", "shoppable-tags", "orders")
    assert settings.dead_letter_topic == "scorer-dead-letters"


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATOR_SCORES_BATCH_SIZE", "lots")
    with pytest.raises(ValueError, match="batch_size"):
        Settings()


def test_readme_documents_every_setting() -> None:
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README.read_text(), flags=re.M))
    expected = {env_name(field) for field in Settings.model_fields}
    assert expected - documented == set(), "settings missing from the docs/operations.md table"
    assert documented - expected == set(), "docs/operations.md documents settings that do not exist"


def test_worker_gc_tuning_sets_the_threshold_and_zero_keeps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from streams.agents import tune_gc

    before = gc.get_threshold()
    try:
        tune_gc(0)
        assert gc.get_threshold() == before
        tune_gc(12_345)
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
        monkeypatch.setenv("CREATOR_SCORES_GC_GEN0_THRESHOLD", "-1")
        with pytest.raises(ValueError, match="gc_gen0_threshold"):
            Settings()
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_worker_keeps_the_log_level_asked_for() -> None:
    # Faust's terminal spinner would set the root logger to DEBUG at --loglevel warning,
    # making every debug call in aiokafka and Faust build a record (a measurable cost).
    import logging

    from streams.agents import build_worker

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        worker = build_worker(Settings(), loglevel="warning")
        assert worker.spinner is None
        worker._setup_logging()
        assert root.level == logging.WARNING
        assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def test_event_loop_setting_installs_uvloop_or_keeps_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import uvloop

    from streams.app import use_event_loop

    policy = asyncio.get_event_loop_policy()
    try:
        monkeypatch.setenv("CREATOR_SCORES_EVENT_LOOP", "uvloop")
        use_event_loop(Settings())
        loop = asyncio.new_event_loop()
        assert isinstance(loop, uvloop.Loop)
        loop.close()
        asyncio.set_event_loop_policy(None)
        monkeypatch.setenv("CREATOR_SCORES_EVENT_LOOP", "aio")
        use_event_loop(Settings())
        loop = asyncio.new_event_loop()
        assert not isinstance(loop, uvloop.Loop)
        loop.close()
        monkeypatch.setenv("CREATOR_SCORES_EVENT_LOOP", "gevent")
        with pytest.raises(ValueError, match="event_loop"):
            Settings()
    finally:
        asyncio.set_event_loop_policy(policy)


def test_the_removed_stream_ingest_is_refused_with_the_reason() -> None:
    check_removed({"CREATOR_SCORES_INGEST": "batch"})  # what the worker does anyway
    check_removed({})
    with pytest.raises(SettingsError, match=r"INGEST=stream is no longer supported.*Unset it"):
        check_removed({"CREATOR_SCORES_INGEST": "stream"})


def test_the_cli_reports_bad_settings_without_a_traceback() -> None:
    from click.testing import CliRunner

    from streams.cli import main

    result = CliRunner().invoke(main, ["stack", "status"], env={"CREATOR_SCORES_INGEST": "stream"})
    assert result.exit_code == 1
    assert "invalid settings: CREATOR_SCORES_INGEST=stream" in result.output
    result = CliRunner().invoke(main, ["stack", "status"], env={"CREATOR_SCORES_BATCH_SIZE": "0"})
    assert result.exit_code == 1
    assert "invalid settings" in result.output and "batch_size" in result.output
    assert "Traceback" not in result.output


def test_a_moved_stack_moves_its_clients_unless_they_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.setenv("CREATOR_SCORES_KAFKA_PORT", "39092")
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PORT", "36379")
    moved = Settings()
    assert moved.kafka_bootstrap_servers == "localhost:39092"
    assert moved.redis_url == "redis://localhost:36379/0"
    assert moved.stack_mismatches() == []
    # Client addresses set explicitly win, and `stack up` is told when they disagree.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    monkeypatch.setenv("REDIS_URL", "redis://:secret@localhost:6379/0")
    split = Settings()
    assert split.kafka_bootstrap_servers == "localhost:9092"
    problems = split.stack_mismatches()
    assert problems[0].startswith("KAFKA_BOOTSTRAP_SERVERS=localhost:9092 but the stack's Kafka")
    assert "127.0.0.1:39092" in problems[0]
    assert "REDIS_URL=redis://:***@localhost:6379/0" in problems[1] and "secret" not in problems[1]
    assert Settings(kafka_port=9092, redis_port=6379).stack_mismatches() == []


def test_stack_up_refuses_clients_that_would_miss_the_stack() -> None:
    from click.testing import CliRunner

    from streams.cli import main

    env = {"CREATOR_SCORES_KAFKA_PORT": "39092", "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"}
    result = CliRunner().invoke(main, ["stack", "up"], env=env)
    assert result.exit_code == 1
    assert "the clients would not use the stack this starts" in result.output
    assert "KAFKA_BOOTSTRAP_SERVERS=localhost:9092" in result.output


def test_ports_the_stack_recorded_are_used_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`stack up` moved its services off ports another stack held: every command run with
    that stack folder talks to the moved ones, not to whatever holds the defaults."""
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.setenv("CREATOR_SCORES_STACK_DIR", str(tmp_path))
    assert Settings().kafka_bootstrap_servers == "localhost:9092"  # nothing recorded
    (tmp_path / STACK_PORTS_FILE).write_text(
        '{"kafka_port": 41092, "kafka_controller_port": 41093, "redis_port": 41379}'
    )
    moved = Settings()
    assert (moved.kafka_port, moved.kafka_controller_port, moved.redis_port) == (41092, 41093,
                                                                                41379)  # fmt: skip
    assert moved.kafka_bootstrap_servers == "localhost:41092"
    assert moved.redis_url == "redis://localhost:41379/0"
    assert moved.explicit_ports() == set() and moved.stack_mismatches() == []
    # A port or a client address set in the environment wins over the record.
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PORT", "42379")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    mixed = Settings()
    assert mixed.redis_url == "redis://localhost:42379/0" and mixed.explicit_ports() == {
        "redis_port"
    }
    assert mixed.kafka_bootstrap_servers == "broker:9092"
    # A damaged record is ignored, not a crash.
    (tmp_path / STACK_PORTS_FILE).write_text('{"kafka_port": "x", "redis_port": 70000')
    monkeypatch.delenv("CREATOR_SCORES_REDIS_PORT")
    assert Settings().redis_url == "redis://localhost:6379/0"
