#!/usr/bin/env bash
# Reading one 64 MiB file out of a filesystem image with `domboot fs cat IMG /big.bin > /dev/null` versus
# `cat SRC/big.bin > /dev/null` from the source folder, for ext4, XFS, btrfs, FAT32 and ISO9660 images built from
# that folder. Page cache warm (the image and the source are read once first); RUNS interleaved runs each, medians.
# Uses scripts/domboot (the ReadyToRun publish in artifacts/domboot when there is one).
# Usage: bench/fs-read.sh [SIZE_MIB (default 64)] [RUNS (default 5)]
set -euo pipefail
SIZE_MIB=${1:-64}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOMBOOT="$ROOT/scripts/domboot"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/domboot-bench-fs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for t in mkfs.ext4 mkfs.xfs mkfs.btrfs mkfs.vfat mcopy xorriso python3; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || [ -x "/sbin/$t" ] || { echo "missing $t; run scripts/setup.sh" >&2; exit 69; }
done
export PATH="$PATH:/usr/sbin:/sbin"
"$DOMBOOT" fs cat --help >/dev/null 2>&1 || { echo "scripts/domboot cannot run 'fs cat'; publish domboot first (scripts/setup.sh)" >&2; exit 70; }

SRC="$WORK/src"
mkdir -p "$SRC"
python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(1234).randbytes(int(sys.argv[1]) << 20))' "$SIZE_MIB" > "$SRC/big.bin"
echo tiny > "$SRC/tiny.txt"

# Images sized to fit the file; XFS and btrfs at their usual minimums, as sparse files.
IMG_MIB=$((SIZE_MIB + SIZE_MIB / 4 + 16))
mkfs.ext4 -q -F -d "$SRC" "$WORK/ext4.img" "${IMG_MIB}M"
truncate -s "$(( IMG_MIB > 320 ? IMG_MIB : 320 ))M" "$WORK/xfs.img"
printf 'bench\n0 0\nd--755 0 0\nbig.bin ---644 0 0 %s\ntiny.txt ---644 0 0 %s\n$\n' "$SRC/big.bin" "$SRC/tiny.txt" > "$WORK/xfs.proto"
mkfs.xfs -q -f -p "$WORK/xfs.proto" "$WORK/xfs.img"
truncate -s "$(( IMG_MIB > 256 ? IMG_MIB : 256 ))M" "$WORK/btrfs.img"
mkfs.btrfs -q -f -r "$SRC" "$WORK/btrfs.img" >/dev/null
truncate -s "$(( IMG_MIB > 64 ? IMG_MIB : 64 ))M" "$WORK/fat32.img"
mkfs.vfat -F 32 "$WORK/fat32.img" >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/fat32.img" "$SRC/big.bin" "$SRC/tiny.txt" ::/
xorriso -as mkisofs -quiet -R -o "$WORK/iso9660.iso" "$SRC" 2>/dev/null

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

# .NET start-up is part of every domboot run; measure it alone so the table can also show the read without it.
: > "$WORK/startup"
for _ in $(seq "$RUNS"); do s=$(now_ns); "$DOMBOOT" --help >/dev/null; ms_since "$s" >> "$WORK/startup"; done
STARTUP=$(median < "$WORK/startup")

want=$(sha256sum < "$SRC/big.bin")
echo "fs-read: ${SIZE_MIB} MiB file, median of $RUNS interleaved runs, page cache warm"
printf '%-8s %7s %11s %6s %12s %12s %10s %9s %10s\n' fs "cat ms" "domboot ms" ratio "-help ms" "ratio-help" "tiny ms" "read ms" "ratio-read"
for img in ext4.img xfs.img btrfs.img fat32.img iso9660.iso; do
    fs=${img%.*}
    path="$WORK/$img"
    # warm the page cache (the image and the source), and check the bytes agree
    cat "$path" > /dev/null; cat "$SRC/big.bin" > /dev/null
    got=$("$DOMBOOT" fs cat "$path" /big.bin | sha256sum)
    [ "$got" = "$want" ] || { echo "MISMATCH: domboot fs cat $img /big.bin differs from the source" >&2; exit 1; }
    : > "$WORK/c"; : > "$WORK/d"; : > "$WORK/t"
    for _ in $(seq "$RUNS"); do
        s=$(now_ns); cat "$SRC/big.bin" > /dev/null; ms_since "$s" >> "$WORK/c"
        s=$(now_ns); "$DOMBOOT" fs cat "$path" /big.bin > /dev/null; ms_since "$s" >> "$WORK/d"
        # the same process opening the same image and reading a 5-byte file: start-up + mount cost
        s=$(now_ns); "$DOMBOOT" fs cat "$path" /tiny.txt > /dev/null; ms_since "$s" >> "$WORK/t"
    done
    c=$(median < "$WORK/c"); d=$(median < "$WORK/d"); t=$(median < "$WORK/t")
    awk -v fs="$fs" -v c="$c" -v d="$d" -v s="$STARTUP" -v t="$t" 'BEGIN {
        cc = (c < 1 ? 1 : c); dh = d - s; if (dh < 0) dh = 0; dr = d - t; if (dr < 0) dr = 0
        printf "%-8s %7d %11d %6.2f %12d %12.2f %10d %9d %10.2f\n", fs, c, d, d / cc, dh, dh / cc, t, dr, dr / cc }'
done
echo "domboot start-up (domboot --help): ${STARTUP} ms"
echo "ratio = domboot / cat; -help: minus \`domboot --help\`; read: minus \`domboot fs cat IMG /tiny.txt\` (start-up + opening the fs). Target: ratio <= 2 for ext4, xfs, fat32" >&2
