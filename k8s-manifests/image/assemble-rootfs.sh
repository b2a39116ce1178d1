#!/bin/sh
# Lays out the root filesystem of Flint's container image in OUT_DIR, from the release
# binaries in BIN_DIR and the tools of the machine (or build stage) it runs on:
#
#   /opt/flint/bin/       flint-master, flint-worker, flint-submit (stripped)
#   /opt/flint/examples/  example applications (pi, wordcount), when they were built
#   /start-common.sh /start-master /start-worker   the Kubernetes entry points
#   /bin/sh (dash), /bin/sleep, /usr/bin/getent    what the start scripts and test executors use
#   exactly the shared libraries `ldd` reports for all of the above, plus glibc's NSS
#   modules for host names (libnss_files, libnss_dns, libresolv) and an nsswitch.conf
#   /etc/passwd, /etc/group   user and group `spark` (185, as in Apache Spark's image)
#   /tmp, /opt/flint/work     world-writable with the sticky bit (emptyDirs in Kubernetes)
#
# Usage: assemble-rootfs.sh BIN_DIR OUT_DIR
# Used by the Dockerfile's build stage and by tests/k8s/build-image.sh on the host.
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 BIN_DIR OUT_DIR" >&2
  exit 2
fi
bin_dir=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
binaries="flint-master flint-worker flint-submit"
examples=${FLINT_EXAMPLES-pi wordcount}

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "assemble-rootfs: '$1' is required" >&2
    exit 1
  }
}
need ldd
need install

for b in $binaries; do
  [ -x "$bin_dir/$b" ] || {
    echo "assemble-rootfs: $bin_dir/$b is missing: cargo build --release -p flint-master -p flint-worker -p flint-client --bins" >&2
    exit 1
  }
done

rm -rf "$out"
mkdir -p "$out/opt/flint/bin" "$out/opt/flint/examples" "$out/opt/flint/work" \
  "$out/bin" "$out/usr/bin" "$out/etc" "$out/tmp"
chmod 1777 "$out/tmp" "$out/opt/flint/work"

strip_if_possible() {
  if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded "$1"
  fi
}

for b in $binaries; do
  install -m 0755 "$bin_dir/$b" "$out/opt/flint/bin/$b"
  strip_if_possible "$out/opt/flint/bin/$b"
done
for e in $examples; do
  if [ -x "$bin_dir/$e" ]; then
    install -m 0755 "$bin_dir/$e" "$out/opt/flint/examples/$e"
    strip_if_possible "$out/opt/flint/examples/$e"
  else
    echo "assemble-rootfs: warning: example '$e' was not built ($bin_dir/$e); the image will not have it" >&2
  fi
done

for s in start-common.sh start-master start-worker; do
  install -m 0755 "$here/$s" "$out/$s"
done

# The tools, from the machine's own Debian packages (dash, coreutils, libc-bin).
tool() {
  src=$(command -v "$1") || {
    echo "assemble-rootfs: '$1' is required" >&2
    exit 1
  }
  install -m 0755 "$src" "$out$2"
}
tool dash /bin/sh
tool sleep /bin/sleep
tool getent /usr/bin/getent

# Copies a file to the same path under $out (following symbolic links).
copy_lib() {
  [ -e "$out$1" ] && return 0
  mkdir -p "$out$(dirname "$1")"
  cp -L "$1" "$out$1"
  chmod 0755 "$out$1"
}

# Every shared library (and the dynamic loader) `ldd` names for a file: "name => /path (addr)"
# or "/path (addr)". linux-vdso has no file.
libs_of() {
  ldd "$1" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }
  '
}

elfs=$(find "$out/opt/flint" "$out/bin" "$out/usr/bin" -type f -perm -u+x)
for f in $elfs; do
  for lib in $(libs_of "$f"); do
    copy_lib "$lib"
  done
done

# glibc resolves host names through NSS modules it may dlopen (built into libc.so.6 since
# glibc 2.34, separate before): ship them, and their own dependencies, next to libc.
libc=$(libs_of "$out/bin/sh" | grep '/libc\.so\.' | head -n 1)
libdir=$(dirname "$libc")
for m in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  if [ -e "$libdir/$m" ]; then
    copy_lib "$libdir/$m"
    for lib in $(libs_of "$libdir/$m"); do
      copy_lib "$lib"
    done
  else
    echo "assemble-rootfs: warning: $libdir/$m not found" >&2
  fi
done

cat >"$out/etc/nsswitch.conf" <<'CONF'
passwd: files
group: files
hosts: files dns
CONF
cat >"$out/etc/passwd" <<'CONF'
root:x:0:0:root:/root:/bin/false
spark:x:185:185:Flint:/opt/flint:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
CONF
cat >"$out/etc/group" <<'CONF'
root:x:0:
spark:x:185:
nogroup:x:65534:
CONF
chmod 0644 "$out/etc/nsswitch.conf" "$out/etc/passwd" "$out/etc/group"

echo "assemble-rootfs: $(du -sk "$out" | cut -f1) KiB in $out"
