#!/usr/bin/env python3
"""Runs llama.cpp's HTTP server in-process through PyPI's xllamacpp.

LabelForge starts this when no `llama-server` binary is available. It takes the
subset of llama-server's flags that LabelForge passes, so the Swift side builds
one argument list for both: --model, --host, --port, --parallel, --ctx-size,
--threads, --poll, --batch-size, --ubatch-size, --api-key-file, --log-file, --embedding (serve /v1/embeddings), --reranking (serve
/v1/rerank: embeddings with rank pooling), and --no-cache-prompt (a no-op here:
LabelForge sends `cache_prompt` per request). It exits when its parent dies, so a killed
LabelForge never leaves an engine behind.

How it exits with its parent: engine_process.py.
"""
import argparse
import os
import signal
import sys
import threading

from engine_process import exit_with_parent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", "-m", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", "-np", type=int, default=2)
    parser.add_argument("--ctx-size", "-c", type=int, default=4096)
    parser.add_argument("--threads", "-t", type=int, default=0)
    parser.add_argument("--poll", type=int, default=None)
    parser.add_argument("--batch-size", "-b", type=int, default=None)
    parser.add_argument("--ubatch-size", "-ub", type=int, default=None)
    parser.add_argument("--api-key-file", default=None)
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--no-cache-prompt", action="store_true")
    parser.add_argument("--embedding", "--embeddings", action="store_true")
    parser.add_argument("--reranking", "--rerank", action="store_true")
    args = parser.parse_args()

    exit_with_parent()
    if args.log_file:
        fd = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_size * args.parallel
    if args.threads > 0:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    if args.poll is not None:
        params.cpuparams.poll = args.poll
        params.cpuparams_batch.poll = args.poll
    if args.batch_size is not None:
        params.n_batch = args.batch_size
    if args.ubatch_size is not None:
        params.n_ubatch = args.ubatch_size
    if args.api_key_file:
        with open(args.api_key_file) as handle:
            params.api_keys = [line.strip() for line in handle if line.strip()]
    params.endpoint_props = True
    if args.embedding or args.reranking:
        params.embedding = True
    if args.reranking:
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_RANK
    params.warmup = False

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = xllamacpp.Server(params)  # serves from its own threads while this one waits
    print(f"xllamacpp server listening on {args.host}:{args.port}", flush=True)
    while not stop.wait(0.5):
        pass
    # Leave at once: deleting the xllamacpp server can block forever joining its threads, which left
    # orphaned engines behind when LabelForge was killed. Exiting the process closes the socket.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
