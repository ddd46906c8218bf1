"""kind = "llamacpp": chatplex starts llama.cpp's server for a GGUF file itself and stops it."""

from __future__ import annotations

import pytest

from chatplex.config import ProviderConfig
from chatplex.core.models import MessageState
from chatplex.providers.base import BadRequest, ChatMessage, ChatRequest, TextDelta
from chatplex.providers.llamacpp import LlamaCppProvider
from tests.core.test_coordinator import finished
from tests.helpers import make_config


async def test_local_gguf_chat_through_the_coordinator(tiny_model, tmp_path, coordinators):
    pc = ProviderConfig(name="local", kind="llamacpp", model_path=str(tiny_model), model="tiny", max_concurrency=2)
    coord, rec = await coordinators(make_config(tmp_path, pc))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "hello")
    done = await rec.wait(finished(reply.id), timeout=60)
    assert done.message.state is MessageState.COMPLETE, done.message.error
    assert done.message.content.strip()
    provider = coord.provider("local")  # the one the reply ran on: made once, shared
    proc = provider._proc
    assert proc is not None and proc.returncode is None
    await coord.stop()
    assert proc.returncode is not None  # the server went away with chatplex


async def test_temperature_zero_gives_the_fixed_reply(tiny_model):
    p = LlamaCppProvider("local", str(tiny_model))
    req = ChatRequest(model="tiny", messages=[ChatMessage("user", "hi")], temperature=0)
    text = "".join([e.text async for e in p.stream(req) if isinstance(e, TextDelta)])
    await p.aclose()
    assert text == " the of and to in is."


async def test_missing_model_file_is_a_clear_error(tmp_path):
    p = LlamaCppProvider("local", str(tmp_path / "nope.gguf"))
    with pytest.raises(BadRequest, match="does not exist"):
        async for _ in p.stream(ChatRequest(model="x", messages=[ChatMessage("user", "hi")])):
            pass
    await p.aclose()
