#!/usr/bin/env bash
# Sequential read throughput of a qcow2 image through domboot's reader (`domboot disk read`) versus
# `qemu-img convert -O raw` of the same image: median of RUNS runs each, for plain and zlib-compressed qcow2.
# Usage: bench/disk-read.sh [SIZE_MIB (default 256)] [RUNS (default 5)]
set -euo pipefail
SIZE_MIB=${1:-256}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/domboot-bench-disk.XXXXXX")
# Outputs go to tmpfs when there is one, so the figures measure reading and decoding, not disk writeback.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then OUT=$(mktemp -d /dev/shm/domboot-bench-out.XXXXXX); else OUT="$WORK/out"; mkdir -p "$OUT"; fi
trap 'rm -rf "$WORK" "$OUT"' EXIT

for t in qemu-img python3 dotnet; do command -v "$t" >/dev/null || { echo "missing $t; run scripts/setup.sh" >&2; exit 69; }; done

echo "publishing domboot (Release, ReadyToRun, as scripts/setup.sh does)..." >&2
dotnet publish "$ROOT/src/DomBoot.Cli" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o "$WORK/bin" -v quiet -nologo >/dev/null
DOMBOOT="$WORK/bin/domboot"
"$DOMBOOT" disk read --help >/dev/null 2>&1 || { echo "domboot has no 'disk read' command (DiskCommand not registered)" >&2; exit 70; }

# Source disk: half incompressible random data, half text-like data, a few zero stretches (seeded, repeatable).
python3 - "$WORK/src.raw" "$SIZE_MIB" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(1234)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
with open(path, "wb") as f:
    for i in range(mib):
        if i % 16 == 15:
            f.write(b"\0" * (1 << 20))
        elif i % 2 == 0:
            f.write(rng.randbytes(1 << 20))
        else:
            chunk = bytearray()
            while len(chunk) < (1 << 20):
                chunk += rng.choice(words) + b" "
            f.write(bytes(chunk[: 1 << 20]))
PY
qemu-img convert -f raw -O qcow2 "$WORK/src.raw" "$WORK/plain.qcow2"
qemu-img convert -f raw -O qcow2 -c "$WORK/src.raw" "$WORK/compressed.qcow2"
rm -f "$WORK/src.raw"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# .NET start-up is part of every domboot run; measure it alone so the table can show the ratio without it.
: > "$WORK/s.times"
for _ in $(seq "$RUNS"); do s=$(now); "$DOMBOOT" --help >/dev/null; e=$(now); echo "$e - $s" | bc -l >> "$WORK/s.times"; done
STARTUP=$(median < "$WORK/s.times")

printf '%-12s %10s %12s %12s %12s %8s %14s\n' image "size MiB" "qemu-img s" "domboot s" "domboot MiB/s" ratio "ratio-startup"
for kind in plain compressed; do
    img="$WORK/$kind.qcow2"
    # warm the page cache and check both agree byte for byte
    qemu-img convert -O raw "$img" "$OUT/q.raw"
    "$DOMBOOT" disk read "$img" -o "$OUT/d.raw"
    cmp "$OUT/q.raw" "$OUT/d.raw" || { echo "MISMATCH for $kind" >&2; exit 1; }
    : > "$WORK/q.times"; : > "$WORK/d.times"
    for _ in $(seq "$RUNS"); do
        rm -f "$OUT/q.raw" "$OUT/d.raw"
        s=$(now); qemu-img convert -O raw "$img" "$OUT/q.raw"; e=$(now)
        echo "$e - $s" | bc -l >> "$WORK/q.times"
        s=$(now); "$DOMBOOT" disk read "$img" -o "$OUT/d.raw"; e=$(now)
        echo "$e - $s" | bc -l >> "$WORK/d.times"
    done
    q=$(median < "$WORK/q.times"); d=$(median < "$WORK/d.times")
    printf '%-12s %10d %12.3f %12.3f %12.1f %8.2f %14.2f\n' "$kind" "$SIZE_MIB" "$q" "$d" "$(echo "$SIZE_MIB / $d" | bc -l)" \
        "$(echo "$q / $d" | bc -l)" "$(echo "$q / ($d - $STARTUP)" | bc -l)"
done
printf 'domboot start-up (domboot --help): %.3f s\n' "$STARTUP"
echo "ratio = qemu-img time / domboot time (above 1: domboot is faster); ratio-startup subtracts domboot's start-up" >&2
