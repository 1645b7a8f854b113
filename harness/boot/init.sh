#!/bin/busybox sh
# tdg's stand-in for Talos's init in the boot tests (what siderolabs/talos
# internal/app/init/main.go does, in shell): mount rootfs.sqsh, then every layer
# extensions.yaml lists, in Talos's order (the last layer first), printing Talos's line for
# each; then say what machined says when unconfigured, and power off. A layer that does not
# mount stops the boot, as it stops Talos's.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "[tdg-init] $*"; poweroff -f; sleep 5; }
# Debian's kernel has loop and squashfs as modules; the zboot kernel the trials build has them
# built in (then /sys/module/loop and /proc/filesystems already say so).
[ -d /sys/module/loop ] || insmod /lib/tdg/loop.ko || fail "cannot load loop.ko"
grep -qw squashfs /proc/filesystems || insmod /lib/tdg/squashfs.ko || fail "cannot load squashfs.ko"
mkdir -p /rootfs /ext
mount -t squashfs -o loop,ro /rootfs.sqsh /rootfs || fail "cannot mount rootfs.sqsh"
if [ -f /extensions.yaml ]; then
  awk '
    /^- image: / { if (img != "") print img, name, ver; img = $3; name = ""; ver = ""; next }
    /^    name: / && name == "" { name = $2; gsub(/["\047]/, "", name); next }
    /^    version: / && ver == "" { ver = $2; gsub(/["\047]/, "", ver); next }
    END { if (img != "") print img, name, ver }
  ' /extensions.yaml | tac > /layers
  while read -r image name version; do
    echo "[talos] [initramfs] enabling system extension $name $version"
    mkdir -p "/ext/$image"
    mount -t squashfs -o loop,ro "/$image" "/ext/$image" || fail "failed to mount $image"
    sum=$(cd "/ext/$image" && find . -type f | sort | xargs -r sha256sum | sha256sum | cut -d' ' -f1)
    echo "[tdg-init] layer $name sha256 $sum"
  done < /layers
  # Each extension service, as Talos's service runner reports it (service_runner.go): one
  # that depends on `configuration: true` waits for its ExtensionServiceConfig, which an
  # unconfigured node never gets; the others start.
  for spec in /ext/*/usr/local/etc/containers/*.yaml; do
    [ -f "$spec" ] || continue
    svc="ext-$(basename "$spec" .yaml)"
    if grep -q "configuration: true" "$spec"; then
      echo "[talos] service[$svc](Waiting): Waiting for extension service config"
    else
      echo "[talos] service[$svc](Running): Started task $svc (PID 1) for container $svc"
    fi
  done
fi
# tdg.hang on the kernel command line: hang here, as a node that never comes up.
grep -qw tdg.hang /proc/cmdline && sleep 3600
echo "[talos] entering maintenance service"
poweroff -f
sleep 5
