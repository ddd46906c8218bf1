"""`chatplex send --models a,b,c` (issue 17, item 3 from a script): one prompt to three models
at once — llama.cpp's real server, a slow fake one and a failing one — each in a session of its
own, run in parallel through the queue, with each reply's first-token time, speed, tokens and
cost; exit 1 because one failed."""

from __future__ import annotations

import json

from tests.fakeserver import Fault


def test_one_prompt_to_three_models_reports_each(cli, fake, tiny_server):
    slow = fake.scenario(reply="slow and steady wins", token_delay=0.05)
    broken = fake.scenario(reply="never", faults=[Fault(status=400)])
    (cli.tmp_path / "config.toml").write_text(
        'max_attempts = 1\n[prices."tiny"]\ninput = 1000\noutput = 2000\n'
        f'[providers.tiny]\nkind = "openai"\nbase_url = "{tiny_server.url}"\nmodel = "tiny"\napi_key_env = ""\n'
        f'[providers.slow]\nkind = "openai"\nbase_url = "{slow.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
        f'[providers.broken]\nkind = "openai"\nbase_url = "{broken.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )
    done = cli.run("send", "--models", "tiny,slow:fake-large,broken", "--title", "Race", "--json", "hi", code=1)
    results = {r["provider"]: r for r in json.loads(done.out)}
    tiny, slow_r, broken_r = results["tiny"], results["slow"], results["broken"]
    assert tiny["state"] == "complete" and tiny["text"].strip() == tiny_server.REPLY.strip()
    assert tiny["ttft"] is not None and tiny["ttft"] >= 0 and tiny["tokens_per_s"] > 0
    assert tiny["cost"] == (tiny["prompt_tokens"] * 1000 + tiny["completion_tokens"] * 2000) / 1e6
    assert slow_r["model"] == "fake-large" and slow_r["text"] == "slow and steady wins"
    assert slow_r["seconds"] >= 0.14  # its 4 pieces 50 ms apart (stored in whole ms: 0.15 can be 0.150)
    assert slow.requests[0]["model"] == "fake-large"
    assert broken_r["state"] == "error" and "HTTP 400" in broken_r["error"] and broken_r["cost"] is None
    titles = {s["title"] for s in json.loads(cli.run("sessions", "--json").out)}
    assert titles == {"Race · tiny", "Race · fake-large", "Race · fake-small"}
    human = cli.run("send", "--models", "tiny,slow", "hello", code=0).out.decode()
    assert "── tiny:tiny" in human and "── slow:fake-small" in human and "first token" in human


def test_models_is_refused_with_one_model_or_an_unknown_one(cli):
    cli.provider(reply="ok")
    assert "two or more" in cli.run("send", "--models", "fake", "hi", code=2).err_lines[0]
    assert "nope" in cli.run("send", "--models", "fake,nope", "hi", code=2).err_lines[0]
    assert "--session" in cli.run("send", "--models", "fake,fake:x", "--session", "s", "hi", code=2).err_lines[0]
