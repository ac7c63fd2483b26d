#!/usr/bin/env bash
# HTTP throughput serving a 64 MiB image on loopback: `domboot serve` versus nginx (Debian nginx-light) with the
# same client (wrk, else curl in parallel), plus the time of a cache-hit `domboot fetch` (a 304, no body).
# Usage: bench/http.sh [CONNECTIONS (default 16)] [SECONDS (default 10)]
# Needs nginx-light and wrk (apt-get install -y nginx-light wrk; installed here when run as root).
set -euo pipefail
CONNS=${1:-16}
SECS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/domboot-bench-http.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y nginx-light wrk >/dev/null 2>&1 || true; fi
fi
command -v nginx >/dev/null || { echo "missing nginx; apt-get install -y nginx-light" >&2; exit 69; }
for t in dotnet curl; do command -v "$t" >/dev/null || { echo "missing $t; run scripts/setup.sh" >&2; exit 69; }; done

echo "publishing domboot (Release, ReadyToRun)..." >&2
dotnet publish "$ROOT/src/DomBoot.Cli" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o "$WORK/bin" -v quiet -nologo >/dev/null
DOMBOOT="$WORK/bin/domboot"
"$DOMBOOT" serve --help >/dev/null 2>&1 || { echo "domboot has no 'serve' command (ServeCommand not registered)" >&2; exit 70; }

mkdir -p "$WORK/www"
chmod 755 "$WORK" "$WORK/www"   # nginx workers run as an unprivileged user
head -c $((64 << 20)) /dev/urandom > "$WORK/www/image.img"
chmod 644 "$WORK/www/image.img"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

NPORT=$(free_port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes auto;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:$NPORT; root $WORK/www; }
}
NGX
mkdir -p "$WORK/tmp"
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" & PIDS+=($!)

"$DOMBOOT" serve "$WORK/www" --listen 127.0.0.1:0 > "$WORK/serve.url" 2>/dev/null & PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/serve.url" ] && curl -sf -o /dev/null "http://127.0.0.1:$NPORT/image.img" && break; sleep 0.2; done
DURL=$(cat "$WORK/serve.url")
for u in "http://127.0.0.1:$NPORT/image.img" "${DURL}image.img"; do
  [ "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$u")" = "200 67108864" ] || { echo "$u does not serve the image" >&2; exit 70; }
done

# MiB/s of CONNS parallel clients fetching the image for SECS seconds.
measure() {
  local url=$1
  if command -v wrk >/dev/null; then
    wrk -t2 -c"$CONNS" -d"${SECS}s" "$url" | awk '/Transfer\/sec/ { v=$2; if (v ~ /GB/) { sub("GB","",v); v*=1024 } else if (v ~ /MB/) { sub("MB","",v) } else if (v ~ /KB/) { sub("KB","",v); v/=1024 }; printf "%.1f\n", v }'
  else
    local n=$((CONNS * 8)) start end
    start=$(date +%s.%N)
    seq "$n" | xargs -P "$CONNS" -I{} curl -s -o /dev/null "$url"
    end=$(date +%s.%N)
    python3 -c "print(f'{$n*64/($end-$start):.1f}')"
  fi
}
curl -s -o /dev/null "${DURL}image.img"   # warm-up (JIT, page cache)
NG=$(measure "http://127.0.0.1:$NPORT/image.img")
DB=$(measure "${DURL}image.img")
RATIO=$(python3 -c "print(f'{$DB/$NG:.2f}')")
CLIENT=$(command -v wrk >/dev/null && echo "wrk -t2 -c$CONNS -d${SECS}s" || echo "curl x$CONNS")

# Cache-hit fetch: the second `domboot fetch` revalidates with If-None-Match and gets a 304.
"$DOMBOOT" fetch "${DURL}image.img" --cache "$WORK/cache" >/dev/null
S=$(date +%s.%N); "$DOMBOOT" fetch "${DURL}image.img" --cache "$WORK/cache" >/dev/null; E=$(date +%s.%N)
HIT=$(python3 -c "print(f'{$E-$S:.3f}')")
S=$(date +%s.%N); "$DOMBOOT" --help >/dev/null; E=$(date +%s.%N)
START=$(python3 -c "print(f'{$E-$S:.3f}')")

echo "client: $CLIENT, 64 MiB image on 127.0.0.1"
printf '| server         | MiB/s   |\n|----------------|--------:|\n| nginx          | %7s |\n| domboot serve  | %7s |\n' "$NG" "$DB"
echo "ratio domboot/nginx: $RATIO (target >= 0.80)"
echo "cache-hit fetch (304): ${HIT} s end to end (domboot --help start-up: ${START} s)"
