"""The tools layer against real MCP servers: start on first use, shared, calls, the faults a
server can show (missing, dying at start or mid-call, hanging, malformed, huge), names,
arguments, secrets in env, approval policy."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from chatplex.tools import Decision, McpServerConfig, ServerState, ToolServerError, decide
from chatplex.tools.results import RESULT_LIMIT
from chatplex.tools.server import ToolServer
from chatplex.tools.toolbox import Toolbox
from tests.tools.helpers import faulty_server, time_server


async def test_mcp_server_time_over_stdio_answers_and_is_shared(tmp_path, caplog):
    server = ToolServer(time_server(), tmp_path)
    with caplog.at_level(logging.INFO, logger="chatplex.tools"):
        first, second = await asyncio.gather(server.start(), server.start())  # two sessions at once
    try:
        assert first is second and {t.name for t in first} == {"get_current_time", "convert_time"}
        assert sum("ready" in r.getMessage() for r in caplog.records) == 1  # one process for both
        utc = await server.call("get_current_time", {"timezone": "UTC"})
        assert not utc.is_error and json.loads(utc.text)["timezone"] == "UTC"
        nowhere = await server.call("get_current_time", {"timezone": "Nowhere/Nope"})
        assert nowhere.is_error and "Nowhere/Nope" in nowhere.text
    finally:
        await server.aclose()
    assert server.state is ServerState.STOPPED


async def test_a_missing_binary_is_one_clear_line_and_a_backoff(tmp_path):
    server = ToolServer(McpServerConfig(name="ghost", command=str(tmp_path / "no-such-server")), tmp_path)
    with pytest.raises(ToolServerError, match="ghost: cannot start the MCP server: .*no-such-server was not found"):
        await server.start()
    assert server.state is ServerState.FAILED
    with pytest.raises(ToolServerError, match="trying again in"):  # no respawn storm
        await server.start()
    outcome = await server.call("anything", {})
    assert outcome.is_error and "not found" in outcome.text


async def test_a_server_that_dies_at_start_shows_the_tail_of_its_stderr(tmp_path):
    config = McpServerConfig(name="dies", command="sh", args=["-c", "echo 'fatal: no config file' >&2; exit 3"])
    server = ToolServer(config, tmp_path)
    with pytest.raises(ToolServerError) as failure:
        await server.start()
    assert "dies:" in str(failure.value) and "fatal: no config file" in str(failure.value)
    assert "\n" not in str(failure.value)
    assert (tmp_path / "mcp-dies.log").read_text().strip() == "fatal: no config file"  # its stderr, in the log


async def test_a_server_dying_mid_call_is_an_error_result_and_restarts_on_next_use(tmp_path):
    server = ToolServer(faulty_server(), tmp_path)
    try:
        assert (await server.call("echo", {"text": "before"})).text == "before"
        died = await server.call("crash", {})
        assert died.is_error and "stopped during a call of crash" in died.text and "outcome is unknown" in died.text
        assert "crashing on purpose" in died.text  # the stderr tail says why
        assert server.state is ServerState.FAILED
        deadline = time.monotonic() + 30
        while True:  # after its backoff (1 s) the next use starts it again
            again = await server.call("echo", {"text": "after"})
            if not again.is_error:
                break
            assert "trying again in" in again.text and time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert again.text == "after" and server.state is ServerState.READY
    finally:
        await server.aclose()


async def test_a_hanging_call_times_out_as_an_error_result_and_the_server_stays_usable(tmp_path):
    server = ToolServer(faulty_server(timeout=0.5), tmp_path)
    try:
        hung = await server.call("hang", {"seconds": 30})
        assert hung.is_error and "took longer than 0.5 s" in hung.text
        assert (await server.call("echo", {"text": "still here"})).text == "still here"
    finally:
        await server.aclose()


async def test_malformed_content_is_an_error_result_not_a_crash(tmp_path):
    server = ToolServer(faulty_server(), tmp_path)
    try:
        bad = await server.call("malformed", {})
        assert bad.is_error and "could not be read" in bad.text
        assert (await server.call("echo", {"text": "ok"})).text == "ok"
    finally:
        await server.aclose()


async def test_a_1_mb_result_is_kept_whole_and_reaches_the_model_cut_with_a_note(tmp_path):
    server = ToolServer(faulty_server(), tmp_path)
    try:
        big = await server.call("big", {"kilobytes": 1024})
    finally:
        await server.aclose()
    assert not big.is_error and len(big.text) == 1024 * 1024
    seen = big.for_model()
    assert seen.startswith(big.text[:RESULT_LIMIT]) and len(seen) < RESULT_LIMIT + 200
    assert f"{1024 * 1024 - RESULT_LIMIT:,} more characters not shown" in seen


async def test_images_are_described_never_shown(tmp_path):
    server = ToolServer(faulty_server(), tmp_path)
    try:
        picture = await server.call("picture", {})
    finally:
        await server.aclose()
    assert len(picture.images) == 1 and picture.images[0].describe() == f"[image 2×3 png {picture.images[0].size} B]"


async def test_names_clash_only_then_namespaced_and_bad_calls_never_reach_the_server(tmp_path):
    box = Toolbox([faulty_server("a"), faulty_server("b"), time_server()], tmp_path)
    try:
        offered, problems = await box.offered()
        assert problems == []
        assert {"a__echo", "b__echo", "get_current_time"} <= set(offered) and "echo" not in offered
        assert (await box.call(offered, "b__echo", '{"text": "from b"}')).text == "from b"
        unknown = await box.call(offered, "get_weather", "{}")
        assert unknown.is_error and "no tool named 'get_weather'" in unknown.text and "a__echo" in unknown.text
        not_json = await box.call(offered, "get_current_time", '{"timezone": "UT')
        assert not_json.is_error and "not valid JSON" in not_json.text
        wrong = await box.call(offered, "get_current_time", '{"tz": "UTC"}')
        assert (
            wrong.is_error
            and "do not fit its schema" in wrong.text
            and "'timezone' is a required property" in wrong.text
        )
    finally:
        await box.aclose()


async def test_one_server_failing_leaves_the_others_offered(tmp_path):
    box = Toolbox([time_server(), McpServerConfig(name="ghost", command=str(tmp_path / "nope"))], tmp_path)
    try:
        offered, problems = await box.offered()
        assert "get_current_time" in offered
        assert len(problems) == 1 and problems[0].startswith("ghost: cannot start the MCP server")
    finally:
        await box.aclose()


async def test_env_values_come_from_named_variables_and_count_as_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATPLEX_TEST_TOKEN", "tok-123-secret")
    config = faulty_server(env={"TOKEN": "${CHATPLEX_TEST_TOKEN}", "PLAIN": "x"})
    assert config.secrets() == ["tok-123-secret"]
    server = ToolServer(config, tmp_path)
    try:
        assert (await server.call("env", {"name": "TOKEN"})).text == "tok-123-secret"
    finally:
        await server.aclose()
    missing = ToolServer(faulty_server(env={"TOKEN": "${CHATPLEX_TEST_UNSET}"}), tmp_path)
    with pytest.raises(ToolServerError, match=r"^faulty: the environment variable CHATPLEX_TEST_UNSET is not set"):
        await missing.start()


async def test_server_everything_over_streamable_http(everything_url, tmp_path):
    server = ToolServer(McpServerConfig(name="everything", url=everything_url), tmp_path)
    try:
        tools = {t.name for t in await server.start()}
        assert {"echo", "get-sum", "get-tiny-image"} <= tools
        echo = await server.call("echo", {"message": "hello [bold]there[/]"})
        assert not echo.is_error and "hello [bold]there[/]" in echo.text
        total = await server.call("get-sum", {"a": 2, "b": 40})
        assert "42" in total.text
        image = await server.call("get-tiny-image", {})
        assert image.images and image.images[0].describe().startswith("[image ")
    finally:
        await server.aclose()


def test_policy_per_server_then_per_tool_globs_first_match_wins():
    assert decide("anything") is Decision.ASK
    assert decide("get_time", "allow") is Decision.ALLOW
    rules = {"delete_*": "deny", "get_*": "allow", "*": "ask"}
    assert decide("delete_file", "allow", rules) is Decision.DENY
    assert decide("get_file", "ask", rules) is Decision.ALLOW
    assert decide("write_file", "allow", rules) is Decision.ASK
    assert decide("x", "sometimes") is Decision.ASK  # unknown: ask


async def test_a_secret_the_server_prints_to_stderr_is_masked_in_its_log_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATPLEX_TEST_TOKEN", "tok-456-secret")
    config = McpServerConfig(
        name="leaky",
        command="sh",
        args=["-c", 'echo "bad token $TOKEN" >&2; exit 1'],
        env={"TOKEN": "${CHATPLEX_TEST_TOKEN}"},
    )
    server = ToolServer(config, tmp_path)
    with pytest.raises(ToolServerError) as failure:
        await server.start()
    assert "bad token ****" in str(failure.value) and "tok-456-secret" not in str(failure.value)
    assert (tmp_path / "mcp-leaky.log").read_text().strip() == "bad token ****"
