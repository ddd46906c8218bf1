# Copied from shared/reference/tiny-llm so that a clone of chatplex stands on its own.
# python make_tiny_gguf.py OUT.gguf  (greedy reply: " the of and to in is." then EOS)
import sys

import numpy as np
from gguf import GGUFWriter
from gguf import TokenType as T

rng, E, F, C = np.random.default_rng(0), 64, 128, 8.0
words = "the of and to in is you that it was for on".split()
toks = [("<unk>", T.UNKNOWN)] + [(s, T.CONTROL) for s in ("<s>", "</s>", "<|im_start|>", "<|im_end|>")]
toks += [(f"<0x{b:02X}>", T.BYTE) for b in range(256)] + [(chr(c), T.NORMAL) for c in range(33, 127)]
toks += [("\u2581" + x, T.NORMAL) for x in ["", *words]]
names = [t for t, _ in toks]
V, DOT, EOS = len(toks), names.index("."), 4
w = GGUFWriter(sys.argv[1], "llama")
for k, v in dict(
    context_length=2048,
    embedding_length=E,
    block_count=2,
    feed_forward_length=F,
    head_count=4,
    head_count_kv=4,
    layer_norm_rms_eps=1e-5,
    rope_dimension_count=16,
    tokenizer_model="llama",
    token_list=names,
    token_scores=[0.0] * V,
    token_types=[int(t) for _, t in toks],
    bos_token_id=1,
    eos_token_id=EOS,
    unk_token_id=0,
    add_bos_token=True,
).items():
    getattr(w, "add_" + k)(v)
w.add_chat_template(
    "{% for m in messages %}{{'<|im_start|>'+m['role']+'\n'+m['content']+'<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}"
)
r = lambda *s, k=0.02: (rng.standard_normal(s) * k).astype(np.float32)  # noqa: E731
# dims 0-2 untouched by layers: 0 = logit bias, 1 = after "." -> EOS, 2 = after 6th word -> "."
wid = [names.index("\u2581" + x) for x in words]
ends = wid[5::6]
emb = r(V, E, k=1.0)
emb[:, :3] = 0
emb[:, 0] = C
emb[DOT, 1] = C
emb[ends, 2] = C
out = r(V, E, k=0.15)
out[:, 1:3] = 0
h0 = C / np.sqrt((C * C + E - 3) / E)
out[:, 0] = np.array([2 if t[0] == "\u2581" and t[1:] else -1 if y == T.NORMAL else -40 for t, y in toks]) / h0
out[EOS, 1] = out[DOT, 2] = 80 / h0
U = emb[:, 3:] / np.linalg.norm(emb[:, 3:], axis=1, keepdims=True)
for i, j in [(names.index("<0x0A>"), wid[0])] + [(a, b) for a, b in zip(wid, wid[1:], strict=False) if a not in ends]:
    out[j, 3:] += 1.6 * U[i]  # greedy successor of token i is j
one = np.ones(E, np.float32)
for n, t in [("token_embd", emb), ("output_norm", one), ("output", out)]:
    w.add_tensor(n + ".weight", t)
for i in range(2):
    wo, dn = r(E, E), r(E, F)
    wo[:3] = dn[:3] = 0
    for n, t in dict(
        attn_norm=one,
        attn_q=r(E, E),
        attn_k=r(E, E),
        attn_v=r(E, E),
        attn_output=wo,
        ffn_norm=one,
        ffn_gate=r(F, E),
        ffn_up=r(F, E),
        ffn_down=dn,
    ).items():
        w.add_tensor(f"blk.{i}.{n}.weight", t)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
