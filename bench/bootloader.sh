#!/usr/bin/env bash
# Bootloader time: whole-process `domboot bootloader -q --output-format=simple` vs Debian's pygrub
# (xen-utils-4.17, installed here if missing) on the same disk image, and vs plain `cp` of the same kernel and
# initrd; median of RUNS interleaved runs. Needs scripts/setup.sh to have run; run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
cache=${DOMBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domboot}
domboot="$here/scripts/domboot"
pygrub=/usr/lib/xen-4.17/bin/pygrub
if [ ! -x "$pygrub" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xen-utils-4.17 >/dev/null
fi
work=$(mktemp -d /tmp/domboot-bench-bl.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A Debian-like disk pygrub can read: MBR, one ext4 partition with /boot/grub/grub.cfg, kernel and a 32 MiB initrd.
rel=$(cat "$cache/kernel/release")
mkdir -p "$work/root/boot/grub" "$work/out-d" "$work/out-p" "$work/out-c"
cp "$cache/kernel/vmlinuz" "$work/root/boot/vmlinuz-$rel"
head -c $((32 << 20)) /dev/urandom > "$work/root/boot/initrd.img-$rel"
cat > "$work/root/boot/grub/grub.cfg" <<CFG
set default="0"
set timeout=5
menuentry 'Debian GNU/Linux' --class debian {
	linux	/boot/vmlinuz-$rel root=UUID=1111-2222 ro quiet
	initrd	/boot/initrd.img-$rel
}
CFG
truncate -s 128M "$work/disk.img"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$work/disk.img"
mkfs.ext4 -q -F -E offset=1048576,root_owner=0:0 -d "$work/root" "$work/disk.img" $(( (128 - 1) * 1024 ))k

ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%d\n", (a[NR/2]+a[NR/2+1])/2}'; }
clean() { rm -f "$work"/out-d/* "$work"/out-p/* "$work"/out-c/*; }

# Both must agree on what they boot before timing means anything.
"$domboot" bootloader -q --output-format=simple --output-directory="$work/out-d" "$work/disk.img" > "$work/rec-d"
"$pygrub" -q --output-format=simple --output-directory="$work/out-p" "$work/disk.img" > "$work/rec-p" 2>/dev/null
kd=$(awk '/^kernel /{print $2}' "$work/rec-d"); kp=$(awk '/^kernel /{print $2}' "$work/rec-p")
rd=$(awk '/^ramdisk /{print $2}' "$work/rec-d"); rp=$(awk '/^ramdisk /{print $2}' "$work/rec-p")
cmp -s "$kd" "$kp" && cmp -s "$rd" "$rp" || { echo "bench: domboot and pygrub chose different files" >&2; exit 1; }
[ "$(grep '^args' "$work/rec-d")" = "$(grep '^args' "$work/rec-p")" ] || { echo "bench: args differ" >&2; exit 1; }
clean

: > "$work/t-d"; : > "$work/t-p"; : > "$work/t-c"
for i in $(seq "$runs"); do
  ms "$pygrub" -q --output-format=simple --output-directory="$work/out-p" "$work/disk.img" >> "$work/t-p"
  ms "$domboot" bootloader -q --output-format=simple --output-directory="$work/out-d" "$work/disk.img" >> "$work/t-d"
  ms cp "$work/root/boot/vmlinuz-$rel" "$work/root/boot/initrd.img-$rel" "$work/out-c/" >> "$work/t-c"
  clean
done
p=$(median < "$work/t-p"); d=$(median < "$work/t-d"); c=$(median < "$work/t-c")
echo "bootloader, median of $runs interleaved runs (kernel $(stat -c %s "$cache/kernel/vmlinuz") B + initrd 32 MiB, MBR ext4)"
echo "  pygrub (xen-utils-4.17): ${p} ms   (runs: $(tr '\n' ' ' < "$work/t-p"))"
echo "  domboot bootloader:      ${d} ms   (runs: $(tr '\n' ' ' < "$work/t-d"))"
echo "  cp kernel+initrd:        ${c} ms   (runs: $(tr '\n' ' ' < "$work/t-c"))"
awk -v p="$p" -v d="$d" -v c="$c" 'BEGIN { printf "  domboot/pygrub: %.2f (target <= 0.33)   domboot/cp: %.2f (target <= 2)\n", d/p, d/(c>0?c:1) }'
