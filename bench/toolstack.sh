#!/usr/bin/env bash
# Toolstack (issue 6): `domboot create` to the guest's first console marker vs plain QEMU with the same argv (the
# qemu_argv domboot recorded in domain.json, with the console socket replaced by a file), interleaved; `list` with
# 10 domains running; pause/unpause round trip; save/restore time and size vs QEMU's own migrate to a file (when
# `domboot save` exists); memory held by domboot per running domain (RSS of its supervisor, from /proc).
# Medians of RUNS (default 5). Needs scripts/setup.sh to have run (kernel + busybox cache, python3). Run as root
# (the initramfs needs a /dev/console node). Uses scripts/domboot (the ReadyToRun build in artifacts/domboot).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
domains=${DOMAINS:-10}
mem=${MEM:-128}
cache=${DOMBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domboot}
domboot="$here/scripts/domboot"
kernel="$cache/kernel/vmlinuz"
command -v python3 >/dev/null || { echo "bench: needs python3 (QMP for the plain-QEMU reference)" >&2; exit 69; }
work=$(mktemp -d /tmp/dbtb.XXXXXX) # short: Unix socket paths are limited to 107 bytes
export DOMBOOT_STATE_DIR="$work/st"
mkdir -p "$DOMBOOT_STATE_DIR"
# ids (and so the 22NN forwarded ports) from a random base, away from other users of this machine
echo $(( 3000 + RANDOM % 5000 )) > "$DOMBOOT_STATE_DIR/last-id"
plain_pid=
cleanup() {
  for d in "$DOMBOOT_STATE_DIR"/domains/*/; do [ -d "$d" ] && "$domboot" destroy "$(basename "$d")" >/dev/null 2>&1 || true; done
  [ -n "$plain_pid" ] && kill -9 "$plain_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Guest: busybox initramfs whose /init prints the marker and then idles.
mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc"
cp "$cache/busybox/busybox" "$work/root/bin/busybox"
ln -s busybox "$work/root/bin/sh"
mknod "$work/root/dev/console" c 5 1
cat > "$work/root/init" <<'INIT'
#!/bin/sh
echo BENCH-UP
while :; do /bin/busybox sleep 1; done
INIT
chmod +x "$work/root/init"
"$domboot" initramfs build "$work/root" -o "$work/initrd.cpio" --mtime 0 >/dev/null

config() { # NAME -> config path
  cat > "$work/$1.cfg" <<EOF
name = "$1"
kernel = "$kernel"
ramdisk = "$work/initrd.cpio"
cmdline = "console=ttyS0 quiet"
memory = $mem
vcpus = 1
EOF
  echo "$work/$1.cfg"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_marker() { # FILE T0 -> ms from T0 to the marker in FILE (FAIL after 120 s)
  local deadline=$(( $2 + 120000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if grep -qs BENCH-UP "$1"; then echo $(( $(now_ms) - $2 )); return; fi
    sleep 0.01
  done
  echo FAIL
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%d\n", (a[NR/2]+a[NR/2+1])/2}'; }
qmp() { # SOCKET COMMAND [ARGS-JSON] -> the "return" value as JSON
  python3 - "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def call(cmd, args=None):
    f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m: return m
f.readline(); call("qmp_capabilities")
r = call(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
print(json.dumps(r.get("return", r)))
PY
}
wait_socket() { for _ in $(seq 500); do [ -S "$1" ] && return; sleep 0.01; done; echo "bench: no QMP socket $1" >&2; exit 1; }

# The exact argv, from a first domain's record.
"$domboot" create "$(config ref)" >/dev/null 2>&1
mapfile -t argv < <(python3 - "$DOMBOOT_STATE_DIR/domains/ref/domain.json" "$work" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["qemu_argv"]; w = sys.argv[2]
i = a.index("-chardev"); a[i + 1] = "file,id=console0,path=" + w + "/plain.log"
i = a.index("-qmp"); a[i + 1] = "unix:" + w + "/plain-qmp.sock,server=on,wait=off"
print("\n".join(a))
PY
)
"$domboot" destroy ref
start_plain() { # [extra args...]: starts the reference QEMU in the background
  rm -f "$work/plain.log" "$work/plain-qmp.sock"
  "${argv[@]}" "$@" </dev/null >/dev/null 2>&1 &
  plain_pid=$!
}
stop_plain() { kill -9 "$plain_pid" 2>/dev/null || true; wait "$plain_pid" 2>/dev/null || true; plain_pid=; }

# 1. create -> marker vs plain QEMU -> marker, interleaved
: > "$work/t.create"; : > "$work/t.plain"; : > "$work/t.qstart"
for i in $(seq "$runs"); do
  rm -f "$DOMBOOT_STATE_DIR/logs/c.console.log"
  t0=$(now_ms); "$domboot" create "$(config c)" >/dev/null 2>&1
  wait_marker "$DOMBOOT_STATE_DIR/logs/c.console.log" "$t0" >> "$work/t.create"
  # when QEMU started, from its /proc start time (clock ticks since boot) -> ms after t0
  qstart=$(python3 -c 'import json,os,sys,time
r = json.load(open(sys.argv[1])); hz = os.sysconf("SC_CLK_TCK")
boot_ms = time.time() * 1000 - float(open("/proc/uptime").read().split()[0]) * 1000
print(int(boot_ms + r["qemu_start_time"] * 1000 / hz - int(sys.argv[2])))' "$DOMBOOT_STATE_DIR/domains/c/domain.json" "$t0")
  echo "$qstart" >> "$work/t.qstart"
  "$domboot" destroy c
  t0=$(now_ms); start_plain
  wait_marker "$work/plain.log" "$t0" >> "$work/t.plain"
  stop_plain
done
if grep -q FAIL "$work/t.create" "$work/t.plain"; then echo "bench: a run did not print the marker" >&2; exit 1; fi
p=$(median < "$work/t.plain"); c=$(median < "$work/t.create")
load=$(cut -d' ' -f1 /proc/loadavg)
echo "toolstack bench: TCG, $mem MiB, 1 vCPU, Debian $(cat "$cache/kernel/release"), medians of $runs, load $load"
echo "  create -> marker:       ${c} ms   (runs: $(tr '\n' ' ' < "$work/t.create"))"
echo "  plain QEMU -> marker:   ${p} ms   (runs: $(tr '\n' ' ' < "$work/t.plain"))"
awk -v p="$p" -v d="$c" 'BEGIN { printf "  ratio create/plain:     %.3f (overhead %+.1f%%; target <= +10%%)\n", d/p, (d/p-1)*100 }'
echo "  of create's time, QEMU started after: $(median < "$work/t.qstart") ms (runs: $(tr '\n' ' ' < "$work/t.qstart"); CLI + supervisor start-up + boot preparation)"

# 2. list with N domains; 3. pause/unpause; 5. supervisor RSS
for i in $(seq "$domains"); do "$domboot" create "$(config "l$i")" >/dev/null 2>&1; done
for i in $(seq "$domains"); do [ "$(wait_marker "$DOMBOOT_STATE_DIR/logs/l$i.console.log" "$(now_ms)")" != FAIL ] || { echo "bench: l$i did not boot" >&2; exit 1; }; done
[ "$("$domboot" list | tail -n +2 | wc -l)" -eq "$domains" ] || { echo "bench: list does not show $domains domains" >&2; exit 1; }
: > "$work/t.list"
for i in $(seq "$runs"); do t0=$(date +%s%N); "$domboot" list >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.list"; done
echo "  list, $domains domains:      $(median < "$work/t.list") ms   (runs: $(tr '\n' ' ' < "$work/t.list"); target < 200 ms)"
: > "$work/t.pause"
for i in $(seq "$runs"); do t0=$(date +%s%N); "$domboot" pause l1; "$domboot" unpause l1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.pause"; done
echo "  pause+unpause:          $(median < "$work/t.pause") ms   (runs: $(tr '\n' ' ' < "$work/t.pause"); two CLI processes)"
: > "$work/rss"; : > "$work/anon"; : > "$work/pss"
for d in "$DOMBOOT_STATE_DIR"/domains/*/; do
  spid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["supervisor_pid"])' "$d/domain.json")
  awk '/^VmRSS:/ {print int($2/1024)}' "/proc/$spid/status" >> "$work/rss"
  awk '/^RssAnon:/ {print int($2/1024)}' "/proc/$spid/status" >> "$work/anon"
  awk '/^Pss:/ {print int($2/1024)}' "/proc/$spid/smaps_rollup" >> "$work/pss"
done
echo "  supervisor memory per domain over $(wc -l < "$work/rss") domains (medians; target < 40 MiB):"
echo "    RSS $(median < "$work/rss") MiB (max $(sort -n "$work/rss" | tail -1)); PSS $(median < "$work/pss") MiB (shared runtime pages split between processes); private anonymous $(median < "$work/anon") MiB"
for i in $(seq "$domains"); do "$domboot" destroy "l$i"; done

# 4. save/restore vs QEMU migrate to a file (only once `domboot save` exists)
if "$domboot" --help 2>/dev/null | grep -qE '^ +save( |$)'; then
  : > "$work/t.save"; : > "$work/t.restore"; : > "$work/t.psave"; : > "$work/t.prestore"
  for i in $(seq "$runs"); do
    "$domboot" create "$(config s)" >/dev/null 2>&1
    wait_marker "$DOMBOOT_STATE_DIR/logs/s.console.log" "$(now_ms)" >/dev/null
    rm -f "$work/s.save"
    t0=$(date +%s%N); "$domboot" save s "$work/s.save" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.save"
    ssize=$(stat -c %s "$work/s.save")
    t0=$(date +%s%N); "$domboot" restore "$work/s.save" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.restore"
    "$domboot" destroy s

    start_plain; wait_marker "$work/plain.log" "$(now_ms)" >/dev/null; wait_socket "$work/plain-qmp.sock"
    rm -f "$work/p.save"
    t0=$(date +%s%N)
    qmp "$work/plain-qmp.sock" stop >/dev/null
    qmp "$work/plain-qmp.sock" migrate "{\"uri\": \"exec:cat > $work/p.save\"}" >/dev/null
    until qmp "$work/plain-qmp.sock" query-migrate | grep -q '"completed"'; do sleep 0.01; done
    t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.psave"
    psize=$(stat -c %s "$work/p.save")
    stop_plain
    t0=$(date +%s%N); start_plain -incoming "exec:cat $work/p.save"; wait_socket "$work/plain-qmp.sock"
    while qmp "$work/plain-qmp.sock" query-status | grep -q inmigrate; do sleep 0.01; done
    t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/t.prestore"
    stop_plain
  done
  echo "  save:    domboot $(median < "$work/t.save") ms, $ssize bytes; QEMU migrate exec:cat $(median < "$work/t.psave") ms, $psize bytes"
  echo "  restore: domboot $(median < "$work/t.restore") ms (whole CLI); QEMU -incoming exec:cat $(median < "$work/t.prestore") ms"
else
  echo "  save/restore: skipped (this build has no \`domboot save\`)"
fi
