#!/usr/bin/env bash
# Boot time: command start -> marker line printed by the guest's /init, `domboot run` against plain
# `qemu-system-x86_64 -kernel ... -initrd ... -append ...` with the same machine settings (the argv domboot prints
# with --dry-run, minus its QMP socket), interleaved, median of N runs each. Also domboot's own start-up
# (`domboot kernel inspect` on the Debian kernel, whole process). Needs scripts/setup.sh to have run. Run as root
# (the initramfs needs a /dev/console node).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-7}
cache=${DOMBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domboot}
domboot="$here/scripts/domboot"
kernel="$cache/kernel/vmlinuz"
work=$(mktemp -d /tmp/domboot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc"
cp "$cache/busybox/busybox" "$work/root/bin/busybox"
ln -s busybox "$work/root/bin/sh"
mknod "$work/root/dev/console" c 5 1
cat > "$work/root/init" <<'INIT'
#!/bin/sh
echo BENCH-MARKER
/bin/busybox poweroff -f
INIT
chmod +x "$work/root/init"
"$domboot" initramfs build "$work/root" -o "$work/initrd.cpio" --mtime 0 >/dev/null

cmdline="console=ttyS0 quiet"
# The exact QEMU argv domboot would run, minus -qmp (plain QEMU has no QMP client to answer).
command -v python3 >/dev/null || { echo "bench: needs python3 to read the --dry-run JSON" >&2; exit 69; }
mapfile -t plain < <("$domboot" run --kernel "$kernel" --initrd "$work/initrd.cpio" --cmdline "$cmdline" --memory 256 --accel tcg --dry-run --json \
  | python3 -c 'import json,sys; a=json.load(sys.stdin)["qemuArgv"]; i=a.index("-qmp"); del a[i:i+2]; print("\n".join(a))')

ms_to_marker() { # command... -> milliseconds from start to the marker line (or FAIL)
  local t0 t1 got=FAIL
  t0=$(date +%s%N)
  while IFS= read -r line; do
    if [ "$got" = FAIL ] && [[ "$line" == *BENCH-MARKER* ]]; then t1=$(date +%s%N); got=$(( (t1 - t0) / 1000000 )); fi
  done < <("$@" 2>/dev/null </dev/null)
  echo "$got"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%d\n", (a[NR/2]+a[NR/2+1])/2}'; }

: > "$work/plain"; : > "$work/domboot"
for i in $(seq "$runs"); do
  ms_to_marker "${plain[@]}" >> "$work/plain"
  ms_to_marker "$domboot" run --kernel "$kernel" --initrd "$work/initrd.cpio" --cmdline "$cmdline" --memory 256 --accel tcg >> "$work/domboot"
done
if grep -q FAIL "$work/plain" "$work/domboot"; then echo "bench: a run did not print the marker" >&2; cat "$work/plain" "$work/domboot" >&2; exit 1; fi
p=$(median < "$work/plain"); d=$(median < "$work/domboot")
echo "boot to marker, median of $runs interleaved runs (TCG, 256 MiB, Debian $(cat "$cache/kernel/release"))"
echo "  plain qemu-system-x86_64 -kernel: ${p} ms   (runs: $(tr '\n' ' ' < "$work/plain"))"
echo "  domboot run:                      ${d} ms   (runs: $(tr '\n' ' ' < "$work/domboot"))"
awk -v p="$p" -v d="$d" 'BEGIN { printf "  ratio domboot/plain: %.3f (overhead %+.1f%%)\n", d/p, (d/p-1)*100 }'

: > "$work/inspect"
for i in $(seq 11); do
  t0=$(date +%s%N); "$domboot" kernel inspect "$kernel" >/dev/null; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 )) >> "$work/inspect"
done
: > "$work/true"
for i in $(seq 11); do t0=$(date +%s%N); /bin/true; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )) >> "$work/true"; done
echo "start-up: domboot kernel inspect (whole process), median of 11: $(median < "$work/inspect") ms (reference /bin/true: $(median < "$work/true") ms)"
