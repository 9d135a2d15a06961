#!/usr/bin/env python3
"""LabelForge's Ray job driver: answers a file of engine requests with Ray Data LLM.

LabelForge submits this through the Ray Jobs REST API with a working directory that holds it and
`requests.jsonl` (one `{"id", "path", "body"}` per line: the exact OpenAI-compatible request body
LabelForge would have sent over HTTP). The driver builds one `ray.data.llm` processor per request
path (`HttpRequestProcessorConfig` to the engine's OpenAI-compatible endpoint), runs the requests,
and writes `{"id", "response"}` lines to `<output>/results.jsonl` (then renames it into place),
where LabelForge reads them: results travel through the output location, never the job's logs.
"""
import argparse
import json
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", required=True, help="requests.jsonl (in the job's working directory)")
    parser.add_argument("--output", required=True, help="directory LabelForge reads results.jsonl from")
    parser.add_argument("--url", required=True, help="the engine's OpenAI-compatible base URL")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-retries", type=int, default=3)
    parser.add_argument("--preserve-order", action="store_true", help="strict runs: Ray Data keeps row order")
    args = parser.parse_args()

    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    with open(args.requests, encoding="utf-8") as handle:
        requests = [json.loads(line) for line in handle if line.strip()]
    ray.init(log_to_driver=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = args.preserve_order
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
    os.makedirs(args.output, exist_ok=True)
    partial = os.path.join(args.output, "results.jsonl.partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for result in sorted(results, key=lambda r: r["id"]):
            handle.write(json.dumps(result, separators=(",", ":")) + "\n")
    os.replace(partial, os.path.join(args.output, "results.jsonl"))
    print(f"labelforge ray driver: {len(results)} of {len(requests)} requests answered")
    return 0 if len(results) == len(requests) else 1


if __name__ == "__main__":
    sys.exit(main())
