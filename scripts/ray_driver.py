#!/usr/bin/env python3
"""LabelForge's Ray job driver: answers a file of engine requests with Ray Data LLM.

LabelForge submits this through the Ray Jobs REST API with a working directory that holds it and,
unless the run's cache is a bucket, `requests.jsonl` (one `{"id", "path", "body"}` per line: the
exact OpenAI-compatible request body LabelForge would have sent over HTTP). The driver builds one
`ray.data.llm` processor per request path (`HttpRequestProcessorConfig` to the engine's
OpenAI-compatible endpoint), runs the requests, and writes `{"id", "response"}` lines to
`<output>/results.jsonl`, where LabelForge reads them: results travel through the output location,
never the job's logs.

`--requests` and `--output` may be `s3://bucket/key` URLs (with `--s3-endpoint` for a server other
than AWS): the files then travel through the bucket, read and written with pyarrow's S3 filesystem
(it ships with `ray[data]`) and the cluster's own credentials (environment, profile or instance
role). LabelForge never sends its credentials to the cluster.
"""
import argparse
import json
import os
import sys


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
    if not location.startswith("s3://"):
        filesystem.create_dir(os.path.dirname(path), recursive=True)
        with filesystem.open_output_stream(path + ".partial") as handle:
            handle.write(text.encode("utf-8"))
        filesystem.move(path + ".partial", path)
    else:
        with filesystem.open_output_stream(path) as handle:
            handle.write(text.encode("utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", required=True, help="requests.jsonl: in the working directory, or s3://…")
    parser.add_argument("--output", required=True, help="where LabelForge reads results.jsonl: a directory, or s3://…")
    parser.add_argument("--s3-endpoint", default=None, help="an S3-compatible server, e.g. http://minio:9000")
    parser.add_argument("--s3-region", default=None)
    parser.add_argument("--url", required=True, help="the engine's OpenAI-compatible base URL")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-retries", type=int, default=3)
    parser.add_argument("--preserve-order", action="store_true", help="strict runs: Ray Data keeps row order")
    args = parser.parse_args()

    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    requests = [json.loads(line) for line in read_text(args.requests, args).splitlines() if line.strip()]
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
    lines = [json.dumps(result, separators=(",", ":")) + "\n" for result in sorted(results, key=lambda r: r["id"])]
    write_text(args.output.rstrip("/") + "/results.jsonl", "".join(lines), args)
    print(f"labelforge ray driver: {len(results)} of {len(requests)} requests answered")
    return 0 if len(results) == len(requests) else 1


if __name__ == "__main__":
    sys.exit(main())
