#!/usr/bin/env bash
# Installs everything domboot and its tests need on Debian 12 (run as root), fetches the Debian cloud kernel,
# static busybox and the Xen hypervisor into the cache folder, restores NuGet packages and builds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${DOMBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domboot}

packages=(qemu-system-x86 qemu-utils busybox-static cpio lz4 gzip xz-utils zstd bzip2 lzop
          fdisk gdisk e2fsprogs xfsprogs btrfs-progs dosfstools mtools xorriso tmux binutils systemd-boot-efi ovmf ipxe-qemu util-linux
          xen-utils-4.17)  # xen-utils: Debian's pygrub, the reference the bootloader tests and bench compare with
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required and not on PATH" >&2; exit 69; }

# Guest artefacts: downloaded as Debian packages, unpacked (never installed) into the cache.
mkdir -p "$cache/debs"
fetch_deb() { # package -> path of its .deb in the cache
  local pkg=$1 deb
  deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$cache/debs" && apt-get download -qq "$pkg" >/dev/null 2>&1) || { as_root apt-get update -qq; (cd "$cache/debs" && apt-get download -qq "$pkg"); }
    deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n1)
  fi
  echo "$deb"
}
unpack() { # deb dir
  rm -rf "$2.tmp" && mkdir -p "$2.tmp" && dpkg-deb -x "$1" "$2.tmp"
}
if [ ! -s "$cache/kernel/vmlinuz" ]; then
  kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || { as_root apt-get update -qq; kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
  deb=$(fetch_deb "$kpkg"); unpack "$deb" "$cache/kernel-pkg"
  mkdir -p "$cache/kernel"
  cp "$cache"/kernel-pkg.tmp/boot/vmlinuz-* "$cache/kernel/vmlinuz.tmp" && mv "$cache/kernel/vmlinuz.tmp" "$cache/kernel/vmlinuz"
  echo "${kpkg#linux-image-}" > "$cache/kernel/release"
  rm -rf "$cache/kernel-pkg.tmp"
fi
# The guest modules the toolstack tests load in their initramfs (virtio disks and NICs, the ACPI power button).
if [ ! -s "$cache/kernel/modules/pvpanic-mmio.ko" ]; then
  kdeb=$(ls "$cache"/debs/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$kdeb" ]; then
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    kdeb=$(fetch_deb "$kpkg")
  fi
  unpack "$kdeb" "$cache/kernel-mods"
  rm -rf "$cache/kernel/modules.tmp" && mkdir -p "$cache/kernel/modules.tmp"
  for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net button evdev pvpanic pvpanic-mmio; do
    find "$cache/kernel-mods.tmp/lib/modules" -name "$m.ko" -exec cp {} "$cache/kernel/modules.tmp/" \;
  done
  rm -rf "$cache/kernel/modules" && mv "$cache/kernel/modules.tmp" "$cache/kernel/modules"
  rm -rf "$cache/kernel-mods.tmp"
fi
if [ ! -s "$cache/busybox/busybox" ]; then
  deb=$(fetch_deb busybox-static); unpack "$deb" "$cache/busybox-pkg"
  mkdir -p "$cache/busybox"
  cp "$cache/busybox-pkg.tmp/bin/busybox" "$cache/busybox/busybox.tmp" && mv "$cache/busybox/busybox.tmp" "$cache/busybox/busybox"
  rm -rf "$cache/busybox-pkg.tmp"
fi
if [ ! -s "$cache/xen/xen.gz" ]; then
  deb=$(fetch_deb xen-hypervisor-4.17-amd64); unpack "$deb" "$cache/xen-pkg"
  mkdir -p "$cache/xen"
  cp "$cache"/xen-pkg.tmp/boot/xen-4.17-amd64.gz "$cache/xen/xen.gz.tmp" && mv "$cache/xen/xen.gz.tmp" "$cache/xen/xen.gz"
  rm -rf "$cache/xen-pkg.tmp"
fi

cd "$here"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore domboot.slnx -v quiet
dotnet build domboot.slnx -c Release --no-restore -v quiet -nologo -clp:ErrorsOnly
# The CLI users run: ReadyToRun-compiled so start-up stays well under 100 ms (NativeAOT is not available here).
dotnet publish src/DomBoot.Cli -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
  -o artifacts/domboot.tmp -v quiet -nologo -clp:ErrorsOnly
rm -rf artifacts/domboot && mv artifacts/domboot.tmp artifacts/domboot
# `bootloader = "domboot-pygrub"` for Xen's xl: a tiny launcher that calls the pygrub-compatible front end.
launcher=/usr/local/bin/domboot-pygrub
if [ -w /usr/local/bin ] || [ "$(id -u)" = 0 ]; then
  printf '#!/bin/sh\n# installed by domboot scripts/setup.sh: pygrub-compatible bootloader for xl\nexec "%s" bootloader "$@"\n' \
    "$here/artifacts/domboot/domboot" > "$launcher.tmp" && chmod 755 "$launcher.tmp" && mv "$launcher.tmp" "$launcher"
fi
echo "setup: done (cache: $cache)"
