#!/usr/bin/env python3
"""An OpenAI-compatible server that models a GPU server's shape for the scale-out benches: each
chat completion takes LATENCY seconds and at most CAPACITY run at once (the batch a GPU holds);
more wait their turn. Answers every chat completion with "positive" in vLLM's response shape.

usage: latency_stub.py PORT LATENCY_S CAPACITY
"""
import http.server
import json
import sys
import threading
import time

port, latency, capacity = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
slots = threading.BoundedSemaphore(capacity)
COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61},
}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/v1/models", "/health"):
            self.reply(200, b'{"object":"list","data":[{"id":"bench","object":"model"}]}')
        else:
            self.reply(404, b'{"error":{"message":"not found"}}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with slots:
            time.sleep(latency)
        self.reply(200, COMPLETION)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


Server(("127.0.0.1", port), Handler).serve_forever()
