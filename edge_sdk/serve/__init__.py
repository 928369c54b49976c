"""`edge-sdk serve`: artifacts served over the Open Inference Protocol (KServe v2) on the slim runner's runtimes.

protocol.py  request/response codec (JSON tensors and the binary-tensor extension), framework-free
model.py     one served artifact: its runners, its public I/O signature, FP32 <-> raw conversion, preprocessing
batching.py  the bounded queue and the workers (dynamic batching for models with a batch axis)
state.py     per-sequence state of stateful models (sequence_id / sequence_start / sequence_end)
metrics.py   Prometheus metrics (prometheus-client) and device gauges
registry.py  the served models by name, and the reload watcher (replaced artifacts are swapped in when checked)
app.py       the HTTP routes (Starlette) and the bearer token
server.py    start (uvicorn), SIGTERM drain, shutdown
loadtest.py  a closed-loop load generator (`edge-sdk loadtest`)
cli_args.py  the `serve` and `loadtest` arguments (standard library only, so `-h` works without the extra)

Imports numpy, the standard library, one runtime and the `serve` extra (starlette, uvicorn, prometheus-client):
never TensorFlow, torch or a converter (tests/test_dependencies.py checks it).
"""
