# python serve.py MODEL.gguf PORT [API_KEY]: llama.cpp's C++ server (xllamacpp) until SIGTERM.
# Prints "listening ..." once the model is loaded. Two parallel slots, one thread each; jinja on.
import os
import signal
import sys
import threading

import xllamacpp as xlc

p = xlc.CommonParams()
p.model.path = sys.argv[1]
p.model_alias = {"tiny"}
p.hostnames = ["127.0.0.1"]
p.port = int(sys.argv[2])
p.api_keys = sys.argv[3:4]
p.n_ctx, p.n_parallel = 4096, 2
p.use_jinja = True  # chat templates as the model ships them: llama.cpp then parses reasoning and tool calls
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
server = xlc.Server(p)
print("listening", server.listening_address, flush=True)
ev = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: ev.set())
parent = os.getppid()
while not ev.wait(1.0) and os.getppid() == parent:
    pass
