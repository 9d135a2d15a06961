"""Checks LabelForge's batch requests and the batch stub's answers against the official SDKs' types.

Usage: check_batch_wire.py <stub base URL> <requests.json>
requests.json: {"openai_creates": [...], "openai_lines": [...], "anthropic_creates": [...]}, what
LabelForge sent the stub. Each body is validated with the SDK's own request types (pydantic), and
keys the types do not name are refused. Then the SDK clients run a batch against the stub end to end
(upload, create, retrieve, list, results), so the stub answers in shapes the SDKs parse.
Prints one line per check; exits 1 on the first failure.
"""
import json
import sys
import time
import typing

import anthropic
import openai
from anthropic.types.messages import batch_create_params as anthropic_batch
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from openai.types import Batch, FileObject, batch_create_params
from openai.types.chat import ChatCompletion, completion_create_params
from pydantic import TypeAdapter


def known_keys(typed_dict, value, where):
    extra = set(value) - set(typing.get_type_hints(typed_dict))
    if extra:
        sys.exit(f"{where}: keys the SDK's {typed_dict.__name__} does not have: {sorted(extra)}")


def main():
    base, path = sys.argv[1], sys.argv[2]
    sent = json.load(open(path))
    create = TypeAdapter(batch_create_params.BatchCreateParams)
    chat = TypeAdapter(completion_create_params.CompletionCreateParamsNonStreaming)
    for body in sent["openai_creates"]:
        create.validate_python(body)
        known_keys(batch_create_params.BatchCreateParams, body, "POST /v1/batches")
    for line in sent["openai_lines"]:
        assert set(line) == {"custom_id", "method", "url", "body"}, line.keys()
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions", line
        chat.validate_python(line["body"])
        known_keys(completion_create_params.CompletionCreateParamsNonStreaming, line["body"], "batch line body")
    request = TypeAdapter(anthropic_batch.Request)
    params = anthropic_batch.MessageCreateParamsNonStreaming
    for body in sent["anthropic_creates"]:
        known_keys(anthropic_batch.BatchCreateParams, body, "POST /v1/messages/batches")
        for item in body["requests"]:
            request.validate_python(item)
            known_keys(params, item["params"], "message batch params")
    print(f"requests: {len(sent['openai_creates'])} OpenAI batches ({len(sent['openai_lines'])} lines), "
          f"{len(sent['anthropic_creates'])} Anthropic batches valid")

    # The SDKs against the stub: every answer parsed into the SDK's own models.
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-sdk-check", max_retries=0)
    lines = "".join(json.dumps(line) + "\n" for line in sent["openai_lines"][:5])
    uploaded = client.files.create(file=("batch.jsonl", lines.encode()), purpose="batch")
    assert isinstance(uploaded, FileObject)
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"labelforge_submission": "sdk-check"})
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    assert isinstance(batch, Batch) and batch.status == "completed", batch
    assert any(b.id == batch.id for b in client.batches.list(limit=100))
    for line in client.files.content(batch.output_file_id).text.splitlines():
        ChatCompletion.model_validate(json.loads(line)["response"]["body"])
    print(f"openai {openai.__version__}: batch {batch.id} created, polled, listed, output parsed")

    claude = anthropic.Anthropic(base_url=base, api_key="sk-ant-sdk-check", max_retries=0)
    requests = sent["anthropic_creates"][0]["requests"][:5]
    message_batch = claude.messages.batches.create(requests=requests)
    while message_batch.processing_status != "ended":
        time.sleep(0.05)
        message_batch = claude.messages.batches.retrieve(message_batch.id)
    assert isinstance(message_batch, MessageBatch)
    results = list(claude.messages.batches.results(message_batch.id))
    assert len(results) == len(requests) and all(isinstance(r, MessageBatchIndividualResponse) for r in results)
    print(f"anthropic {anthropic.__version__}: batch {message_batch.id} created, polled, {len(results)} results parsed")


if __name__ == "__main__":
    main()
