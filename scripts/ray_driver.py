#!/usr/bin/env python3
"""LabelForge's Ray job driver: answers a file of engine requests with Ray Data LLM.

LabelForge submits this through the Ray Jobs REST API with a working directory that holds it and,
unless the run's cache is a bucket, `requests.jsonl` (one `{"id", "path", "body"}` per line: the
exact OpenAI-compatible request body LabelForge would have sent over HTTP). The driver builds one
`ray.data.llm` processor per request path, runs the requests, and writes `{"id", "response"}` lines
to `<output>/results.jsonl`, where LabelForge reads them: results travel through the output
location, never the job's logs.

Two processors (`--processor`):
- `http`: `HttpRequestProcessorConfig` sends each body to the engine's OpenAI-compatible endpoint
  and hands back its answer.
- `vllm`: `vLLMEngineProcessorConfig` runs vLLM inside the job on the cluster's GPUs. Each body (in
  vLLM's dialect: `max_completion_tokens`, `structured_outputs`) becomes a row with `messages` and
  `sampling_params` (task `generate`; the chat template is applied here, as vLLM's server applies
  it), or one row per input text (task `embed`), and each answer
  is written back as the OpenAI-compatible body vLLM's server would send (`chat.completion` with
  logprobs and usage; `list` of embeddings), so LabelForge parses and caches it as an HTTP answer.
  A body this path cannot express exactly is answered with an error naming the key, never
  approximated.

`--requests` and `--output` may be `s3://bucket/key` URLs (with `--s3-endpoint` for a server other
than AWS): the files then travel through the bucket, read and written with pyarrow's S3 filesystem
(it ships with `ray[data]`) and the cluster's own credentials (environment, profile or instance
role). LabelForge never sends its credentials to the cluster.
"""
import argparse
import json
import os
import sys

# Chat-completion keys and the vLLM SamplingParams field each becomes. `n` > 1 has no place: the
# Ray stage keeps one output per row.
SAMPLING_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "max_completion_tokens": "max_tokens",
    "max_tokens": "max_tokens",
}
TASKS = {"/v1/chat/completions": "generate", "/v1/embeddings": "embed"}


class Unsupported(ValueError):
    """A request the vLLM processor path cannot express exactly."""


def vllm_rows(request):
    """The rows of the Ray vLLM stage for one `{"id", "path", "body"}` request.

    Every row of a task has the same keys (defaults spelled out), so Ray Data's Arrow blocks never
    merge differing dicts into one struct with stray nulls. A JSON schema travels as a string,
    which vLLM's StructuredOutputsParams accepts, so its object keys keep their order.
    """
    path, body = request["path"], request["body"]
    task = TASKS.get(path)
    if task is None:
        raise Unsupported(
            f"{path} has no vLLM processor task here (Ray's vLLM stage takes one prompt per row, so a rerank's "
            "query-document pairs cannot be scored exactly); use processor: http with a vLLM server"
        )
    if task == "embed":
        for key in body:
            if key not in ("model", "input", "encoding_format"):
                raise Unsupported(f"'{key}' of an embeddings request has no vLLM processor equivalent here")
        if body.get("encoding_format", "float") != "float":
            raise Unsupported("only encoding_format 'float' is supported")
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return [{"id": request["id"], "part": i, "prompt": text} for i, text in enumerate(texts)]
    sampling = {"temperature": 1.0, "top_p": 1.0, "max_tokens": None, "seed": None, "stop": [], "logprobs": None}
    constraint = None
    for key, value in body.items():
        if key in ("model", "messages", "logprobs"):
            continue
        if key == "n":
            if value != 1:
                raise Unsupported("n > 1: Ray's vLLM stage keeps one output per row")
        elif key == "top_logprobs":
            if body.get("logprobs"):
                sampling["logprobs"] = int(value)
        elif key == "structured_outputs":
            constraint = dict(value)
        elif key in SAMPLING_KEYS:
            sampling[SAMPLING_KEYS[key]] = value
        else:
            raise Unsupported(f"'{key}' of a chat request has no vLLM SamplingParams equivalent here")
    # One type per column whatever the JSON spelled (0 or 0.0), as SamplingParams declares them.
    sampling["temperature"], sampling["top_p"] = float(sampling["temperature"]), float(sampling["top_p"])
    if body.get("logprobs") and sampling["logprobs"] is None:
        sampling["logprobs"] = 0
    if constraint is not None:
        unknown = set(constraint) - {"json", "choice"}
        if unknown:
            raise Unsupported(f"structured_outputs.{sorted(unknown)[0]} is not supported here")
        schema = constraint.get("json")
        # Compact JSON comes from the engine's structured_outputs_config (engine_kwargs), never from
        # the request: vLLM ignores a request's disable_any_whitespace (vllm#48765).
        constraint = {
            "json": json.dumps(schema) if isinstance(schema, (dict, list)) else schema,
            "choice": constraint.get("choice"),
        }
    sampling["structured_outputs"] = constraint
    for message in body["messages"]:
        if not isinstance(message.get("content"), str):
            raise Unsupported(
                "a message whose content is not plain text (an image): this path renders text prompts only; use "
                "processor: http with a vLLM server for a VLM"
            )
    return [{"id": request["id"], "part": 0, "messages": body["messages"], "sampling_params": sampling}]


def logprob_content(output, top):
    """OpenAI's `logprobs.content` from the stage's `generated_tokens` and per-token logprob maps."""
    content = []
    for token_id, alternatives in zip(output.get("generated_tokens") or [], output.get("logprobs") or []):
        # Arrow may hand the token-id keys back as strings.
        by_id = {int(key): value for key, value in alternatives.items() if value is not None}
        chosen = by_id.get(int(token_id))
        if chosen is None:
            continue
        ranked = sorted(by_id.values(), key=lambda value: value.get("rank") or 0)
        content.append(
            {
                "token": chosen.get("decoded_token") or "",
                "logprob": float(chosen["logprob"]),
                "top_logprobs": [
                    {"token": value.get("decoded_token") or "", "logprob": float(value["logprob"])}
                    for value in ranked[:top]
                ],
            }
        )
    return content


def chat_response(request, output):
    """The body vLLM's server would send for a chat request, from the stage's output row."""
    body = request["body"]
    generated = int(output.get("num_generated_tokens") or 0)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": output.get("generated_text") or ""},
        # The stage reports no finish reason: a completion that used every token allowed was cut.
        "finish_reason": "length" if limit is not None and generated >= int(limit) else "stop",
    }
    if body.get("logprobs"):
        choice["logprobs"] = {"content": logprob_content(output, int(body.get("top_logprobs") or 0))}
    prompt = int(output.get("num_input_tokens") or 0)
    return {
        "id": f"ray-vllm-{request['id']}",
        "object": "chat.completion",
        "model": body.get("model", ""),
        "choices": [choice],
        "usage": {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated},
    }


def embeddings_response(request, outputs):
    """The body of `/v1/embeddings` from the stage's output rows of one request, in input order."""
    outputs = sorted(outputs, key=lambda output: output["part"])
    tokens = sum(int(output.get("num_input_tokens") or 0) for output in outputs)
    return {
        "object": "list",
        "model": request["body"].get("model", ""),
        "data": [
            {"object": "embedding", "index": output["part"], "embedding": [float(x) for x in output["embeddings"]]}
            for output in outputs
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def error_response(message):
    """An answer LabelForge records as the engine's error for that request."""
    return {"object": "error", "message": message}


def storage(location, args):
    """The pyarrow filesystem holding `location` (a path, or an s3:// URL) and the path inside it."""
    from pyarrow import fs

    if location.startswith("s3://"):
        options = {"region": args.s3_region} if args.s3_region else {}
        if args.s3_endpoint:
            scheme, _, host = args.s3_endpoint.partition("://")
            options.update(scheme=scheme, endpoint_override=host)
        return fs.S3FileSystem(**options), location[len("s3://") :]
    return fs.LocalFileSystem(), os.path.abspath(location)


def read_text(location, args):
    filesystem, path = storage(location, args)
    with filesystem.open_input_stream(path) as handle:
        return handle.read().decode("utf-8")


def write_text(location, text, args):
    """Writes all of `text` or nothing: a local file is renamed into place; an S3 object appears whole."""
    filesystem, path = storage(location, args)
    local = not location.startswith("s3://")
    if local:
        filesystem.create_dir(os.path.dirname(path), recursive=True)
    with filesystem.open_output_stream(path + ".partial" if local else path) as handle:
        handle.write(text.encode("utf-8"))
    if local:
        filesystem.move(path + ".partial", path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", required=True, help="requests.jsonl: in the working directory, or s3://…")
    parser.add_argument("--output", required=True, help="where LabelForge reads results.jsonl: a directory or s3://…")
    parser.add_argument("--s3-endpoint", default=None, help="an S3-compatible server, e.g. http://minio:9000")
    parser.add_argument("--s3-region", default=None)
    parser.add_argument("--processor", choices=["http", "vllm"], default="http")
    parser.add_argument("--url", help="http: the engine's OpenAI-compatible base URL")
    parser.add_argument("--model-source", help="vllm: the model vLLM loads (a Hugging Face id or a path on the nodes)")
    parser.add_argument("--engine-kwargs", default="{}", help="vllm: vLLMEngineProcessorConfig.engine_kwargs (JSON)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-retries", type=int, default=3)
    parser.add_argument("--preserve-order", action="store_true", help="strict runs: Ray Data keeps row order")
    args = parser.parse_args()

    import ray

    requests = [json.loads(line) for line in read_text(args.requests, args).splitlines() if line.strip()]
    ray.init(log_to_driver=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = args.preserve_order
    results = run_vllm(requests, args) if args.processor == "vllm" else run_http(requests, args)
    lines = [json.dumps(result, separators=(",", ":")) + "\n" for result in sorted(results, key=lambda r: r["id"])]
    write_text(args.output.rstrip("/") + "/results.jsonl", "".join(lines), args)
    print(f"labelforge ray driver: {len(results)} of {len(requests)} requests answered")
    return 0 if len(results) == len(requests) else 1


def run_http(requests, args):
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    results = []
    for path in sorted({request["path"] for request in requests}):
        rows = [{"id": r["id"], "body": json.dumps(r["body"])} for r in requests if r["path"] == path]
        config = HttpRequestProcessorConfig(
            url=args.url.rstrip("/") + path,
            headers={"Authorization": "Bearer " + os.environ["LABELFORGE_API_KEY"]}
            if os.environ.get("LABELFORGE_API_KEY")
            else {},
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            max_retries=args.max_retries,
        )
        processor = build_processor(
            config,
            # The body travels as a JSON string so Ray Data keeps it exactly (no schema inference).
            preprocess=lambda row: {"id": row["id"], "payload": json.loads(row["body"])},
            postprocess=lambda row: {"id": row["id"], "response": json.dumps(row["http_response"])},
        )
        for row in processor(ray.data.from_items(rows)).iter_rows():
            results.append({"id": row["id"], "response": json.loads(row["response"])})
    return results


def load_tokenizer(model_source, engine_kwargs):
    """The tokenizer vLLM uses: engine_kwargs' `tokenizer` (else the model), at the pinned revision."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        engine_kwargs.get("tokenizer") or model_source,
        revision=engine_kwargs.get("tokenizer_revision") or engine_kwargs.get("revision"),
        trust_remote_code=bool(engine_kwargs.get("trust_remote_code", False)),
    )


def chat_prompts(rows, tokenizer):
    """Renders each chat row's messages as vLLM's server does for /v1/chat/completions: the chat
    template with the generation prompt, encoded without adding special tokens (the template holds
    them). Ray's own chat-template and tokenize stages differ: they load the tokenizer unpinned,
    add the generation prompt only after a user message, and encode with special tokens (a second
    BOS for Llama-style templates)."""
    for row in rows:
        text = tokenizer.apply_chat_template(row.pop("messages"), tokenize=False, add_generation_prompt=True)
        row["prompt"] = text
        row["tokenized_prompt"] = tokenizer.encode(text, add_special_tokens=False)
    return rows


def vllm_config(task, args):
    """The processor config for one task: only the vLLM stage. Chat prompts arrive rendered and
    tokenized (`chat_prompts`); embeddings arrive as text, which vLLM tokenizes as its server does;
    the text vLLM generated is kept (Ray's detokenize stage would decode the stop string back in).
    A row that fails is recorded as that row's error, not the job's."""
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=args.model_source,
        task_type=task,
        engine_kwargs=json.loads(args.engine_kwargs),
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        prepare_multimodal_stage=False,
        should_continue_on_error=True,
    )


def run_vllm(requests, args):
    """vLLM inside the job: one processor per task, over the rows of every request of that task."""
    import ray
    from ray.data.llm import build_processor

    results, by_task = [], {}
    for request in requests:
        try:
            by_task.setdefault(TASKS.get(request["path"]), []).extend(vllm_rows(request))
        except Unsupported as error:
            results.append({"id": request["id"], "response": error_response(f"vLLM processor: {error}")})
    refused = {result["id"] for result in results}
    for task, rows in sorted(by_task.items()):
        if task == "generate":
            rows = chat_prompts(rows, load_tokenizer(args.model_source, json.loads(args.engine_kwargs)))
            if rows:
                # In the job's log: what vLLM is about to be given, for a user checking the template.
                print(
                    f"labelforge ray driver: rendered {len(rows)} chat prompt(s); the first, "
                    f"{len(rows[0]['tokenized_prompt'])} tokens: {json.dumps(rows[0]['prompt'])}",
                    flush=True,
                )
        keep = ("id", "part", "num_input_tokens")
        keep += ("generated_text", "generated_tokens", "num_generated_tokens", "logprobs")
        keep += ("embeddings",) if task == "embed" else ()
        processor = build_processor(
            vllm_config(task, args),
            postprocess=lambda row, keep=keep: {key: row.get(key) for key in keep},
        )
        outputs = {}
        for row in processor(ray.data.from_items(rows)).iter_rows():
            outputs.setdefault(int(row["id"]), []).append(row)
        for request in requests:
            answered = outputs.get(request["id"])
            if TASKS.get(request["path"]) != task or request["id"] in refused or not answered:
                continue
            failed = next((row["__inference_error__"] for row in answered if row.get("__inference_error__")), None)
            if failed:
                response = error_response(f"vLLM processor: {failed}")
            elif task == "generate":
                response = chat_response(request, answered[0])
            else:
                response = embeddings_response(request, answered)
            results.append({"id": request["id"], "response": response})
    return results


if __name__ == "__main__":
    sys.exit(main())
