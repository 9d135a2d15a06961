#!/usr/bin/env python3
"""Serves a sentence-embedding model converted by scripts/minilm_to_onnx.py with ONNX Runtime,
over the part of vLLM's OpenAI-compatible API that embeddings use, so LabelForge talks to it in
the `vllm` dialect as to any vLLM server:

  GET  /health, /v1/models (with `max_model_len`: the model's max_seq_length), /version
  POST /v1/embeddings  {model, input: text | [texts] | [token ids] | [[token ids]],
                        encoding_format: float, truncate_prompt_tokens?}
  POST /tokenize       {model, prompt, add_special_tokens?} → {count, max_model_len, tokens}

Texts are tokenized with the model's own tokenizer (tokenizer.json, kept in the ONNX file) and cut
as sentence-transformers cuts them: `truncate_prompt_tokens` keeps the first tokens and the
closing special token. Without it, an input over max_seq_length is refused with vLLM's 400, as
vLLM serves sentence-transformers models (their max_model_len is max_seq_length). Within a request,
texts are sorted by length and run 32 at a time, padded to the longest, as sentence-transformers
batches them; requests run one at a time on `--threads` threads (0: every core).

Measured on 2 cores (runs of real Debian text): about 1.1x sentence-transformers' own speed idle and
1.45x next to `stress-ng --cpu 2`, with no stall; vectors within cosine 0.99999 of its own.

Why not llama.cpp here: the prebuilt xllamacpp wheel runs AVX2 kernels only, and measured 3.7x
slower than this on the same model and texts (llama.cpp still serves chat and rerank).

It exits when its parent dies (engine_process.py). Usage:
  embedding_server.py --model M.onnx --port P [--host 127.0.0.1] [--threads N] [--log-file F]
"""
import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine_process import exit_with_parent

BATCH = 32


class Model:
    def __init__(self, path, threads):
        import numpy as np
        import onnxruntime
        from tokenizers import Tokenizer

        self.np = np
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.tokenizer = Tokenizer.from_str(metadata["tokenizer.json"])
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_length = int(metadata["max_seq_length"])
        self.name = metadata.get("model", os.path.basename(path))
        self.version = f"onnxruntime {onnxruntime.__version__}"
        self.lock = threading.Lock()
        # Special tokens the tokenizer adds before and after a text (BERT: [CLS] … [SEP]).
        whole = self.tokenizer.encode("a").ids
        bare = self.tokenizer.encode("a", add_special_tokens=False).ids
        self.leading = next((i for i in range(len(whole) - len(bare) + 1) if whole[i:i + len(bare)] == bare), 0)
        self.trailing = max(0, len(whole) - self.leading - len(bare))

    def tokens(self, texts, special=True):
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=special)]

    def embed(self, sequences):
        """Vectors of token-id sequences, in their order. Sequences run sorted by length, in batches
        of up to 32 that a much longer sequence does not join, so little of each batch is padding."""
        np = self.np
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        chunks, chunk = [], []
        for i in order:
            if chunk and (len(chunk) == BATCH or len(sequences[i]) > 1.25 * len(sequences[chunk[0]]) + 8):
                chunks.append(chunk)
                chunk = []
            chunk.append(i)
        if chunk:
            chunks.append(chunk)
        vectors = [None] * len(sequences)
        with self.lock:
            for chunk in chunks:
                width = max(len(sequences[i]) for i in chunk)
                ids = np.zeros((len(chunk), width), dtype=np.int64)
                mask = np.zeros((len(chunk), width), dtype=np.int64)
                for row, i in enumerate(chunk):
                    ids[row, :len(sequences[i])] = sequences[i]
                    mask[row, :len(sequences[i])] = 1
                out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                for row, i in enumerate(chunk):
                    vectors[i] = out[row].astype(np.float64).tolist()
        return vectors


class Refusal(Exception):
    """A request vLLM would refuse: HTTP 400 in its error shape."""


def fit(model, ids, limit):
    """A sequence cut to `limit` tokens as sentence-transformers' tokenizer cuts it: the first
    tokens, then the closing special token(s); refused when over the window and not cut."""
    if limit is not None:
        if limit == -1:
            limit = model.max_length
        if limit > model.max_length:
            raise Refusal(
                f"truncate_prompt_tokens value ({limit}) is greater than max_model_len ({model.max_length}). "
                "Please request a smaller truncation size.")
        if len(ids) > limit:
            trailing = model.trailing
            return ids[:max(model.leading, limit - trailing)] + (ids[len(ids) - trailing:] if trailing else [])
        return ids
    if len(ids) > model.max_length:
        raise Refusal(
            f"This model's maximum context length is {model.max_length} tokens. However, you requested {len(ids)} "
            "tokens in the input for embedding generation. Please reduce the length of the input.")
    return ids


def embeddings(model, body):
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise Refusal("input: Input should be a valid string or list of strings")
    if body.get("encoding_format", "float") != "float":
        raise Refusal("encoding_format: only 'float' is served here")
    limit = body.get("truncate_prompt_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < -1 or limit == 0):
        raise Refusal("truncate_prompt_tokens: Input should be greater than or equal to -1")
    texts = [x for x in raw if isinstance(x, str)]
    encoded = iter(model.tokens(texts))
    sequences, counts = [], []
    for item in raw:
        if isinstance(item, str):
            ids = next(encoded)
        elif isinstance(item, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in item):
            ids = item
        else:
            raise Refusal("input: Input should be a valid string or list of strings")
        counts.append(len(ids))
        sequences.append(fit(model, ids, limit))
    vectors = model.embed(sequences)
    tokens = sum(len(s) for s in sequences)
    # Beyond vLLM's shape: each item's token count before any cut (`input_tokens`), so a client
    # counts the texts cut without tokenizing them again.
    return {
        "id": "embd-labelforge", "object": "list", "created": 0, "model": body.get("model", model.name),
        "data": [{"index": i, "object": "embedding", "embedding": v, "input_tokens": n}
                 for i, (v, n) in enumerate(zip(vectors, counts))],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
    }


def tokenize(model, body):
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise Refusal("prompt: a string is required here (chat messages are not served)")
    ids = model.tokens([prompt], special=body.get("add_special_tokens", True) is not False)[0]
    return {"count": len(ids), "max_model_len": model.max_length, "tokens": ids}


def serve(model, host, port, log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, value):
            data = json.dumps(value, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, message, kind):
            self.reply(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

        def do_GET(self):
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            elif self.path == "/version":
                self.reply(200, {"version": model.version})
            elif self.path == "/v1/models":
                self.reply(200, {"object": "list", "data": [{
                    "id": model.name, "object": "model", "created": 0, "owned_by": "labelforge", "root": model.name,
                    "max_model_len": model.max_length}]})
            else:
                self.error(404, f"Not Found: {self.path}", "NotFoundError")

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body is not a JSON object")
            except ValueError as failure:
                return self.error(400, f"Expecting a JSON object: {failure}", "BadRequestError")
            routes = {"/v1/embeddings": embeddings, "/tokenize": tokenize}
            if self.path not in routes:
                return self.error(404, f"Not Found: {self.path}", "NotFoundError")
            try:
                self.reply(200, routes[self.path](model, body))
            except Refusal as refusal:
                self.error(400, str(refusal), "BadRequestError")
            except Exception as failure:  # vLLM answers an engine fault with a 500 in its error shape
                log.write(f"error serving {self.path}: {failure!r}\n")
                log.flush()
                self.error(500, f"{type(failure).__name__}: {failure}", "InternalServerError")

        def log_message(self, format, *args):
            log.write("%s\n" % (format % args))
            log.flush()

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", "-t", type=int, default=0)
    parser.add_argument("--log-file", default=None)
    args = parser.parse_args()

    exit_with_parent()
    log = open(args.log_file, "a") if args.log_file else sys.stderr
    model = Model(args.model, args.threads if args.threads > 0 else (os.cpu_count() or 1))
    serve(model, args.host, args.port, log)
    log.write(f"embedding server ({model.version}, {model.name}, max_seq_length {model.max_length}) "
              f"listening on {args.host}:{args.port}\n")
    log.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
