# Sourced by the benches that need a zero-latency OpenAI-compatible engine: nginx answering every
# chat completion with one valid vLLM-shaped response ("positive"). Installs nginx (Debian) when
# missing. After `start_nginx_stub <dir>`, $port is the stub's port; `stop_nginx_stub <dir>` stops it.
start_nginx_stub() {
  local dir=$1
  command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
  port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  local completion='{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"positive"},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":1,"total_tokens":61}}'
  mkdir -p "$dir/nginx"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    default_type application/json;
    location = /v1/chat/completions { return 200 '$completion'; }
    location = /v1/models { return 200 '{"object":"list","data":[{"id":"bench","object":"model"}]}'; }
    location / { return 404 '{"error":{"message":"not found"}}'; }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir/nginx"
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break; sleep 0.1; done
}

stop_nginx_stub() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null || true
}
