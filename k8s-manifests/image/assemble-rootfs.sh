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
# With --with-spark SPARK_HOME (the worker variant that runs stock Spark JVM executors), also:
#
#   /opt/java/openjdk/    a Java runtime (17 or later) copied from this machine's JDK: the one
#                         in $JAVA_HOME, else the one `java` on PATH belongs to; bin/java,
#                         bin/keytool, conf/, lib/ (without the JDK-only ct.sym and src.zip,
#                         and without the X11 libraries a headless JRE leaves out), legal/,
#                         release; symbolic links (e.g. Debian's, into /etc) resolved
#   /opt/spark/jars/      Spark's jars, from SPARK_HOME/jars (a Spark distribution, a pyspark
#                         package, or a virtualenv with pyspark installed)
#   /opt/spark/conf/      SPARK_HOME/conf, when there is one
#   /bin/bash, /bin/rm, /bin/chmod, /bin/ls   what the JVMs run: Spark deletes its scratch
#                         directories with `rm -rf`; Hadoop's local file system and Shell,
#                         without Hadoop's native library, run chmod, `ls -ld` and bash
#   the shared libraries `ldd` reports for bin/java, every lib/**/*.so of that runtime and
#   those commands
#
# The image sets JAVA_HOME=/opt/java/openjdk and SPARK_HOME=/opt/spark
# (image/Dockerfile.scratch-spark).
#
# Usage: assemble-rootfs.sh [--with-spark SPARK_HOME] BIN_DIR OUT_DIR
# Used by the Dockerfile's build stage and by tests/k8s/build-image.sh on the host.
set -eu

usage() {
  echo "usage: $0 [--with-spark SPARK_HOME] BIN_DIR OUT_DIR" >&2
  exit 2
}
spark_src=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --with-spark)
      [ "$#" -ge 2 ] || usage
      spark_src=$2
      shift 2
      ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
if [ "$#" -ne 2 ]; then
  usage
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

# The worker variant: where Spark's jars and the Java runtime come from.
java_dest=/opt/java/openjdk
spark_dest=/opt/spark
if [ -n "$spark_src" ]; then
  if [ ! -d "$spark_src/jars" ]; then
    # A virtualenv with pyspark installed: its package is a SPARK_HOME.
    for d in "$spark_src"/lib/python3*/site-packages/pyspark; do
      if [ -d "$d/jars" ]; then
        spark_src=$d
        break
      fi
    done
  fi
  if ! ls "$spark_src"/jars/spark-core_*.jar >/dev/null 2>&1; then
    echo "assemble-rootfs: no jars/spark-core_*.jar in $spark_src: give --with-spark a SPARK_HOME (a Spark distribution or a pyspark package) or a virtualenv with pyspark installed" >&2
    exit 1
  fi
  if [ -n "${JAVA_HOME:-}" ]; then
    java_src=$JAVA_HOME
  else
    need java
    need readlink
    # /usr/bin/java -> /etc/alternatives/java -> <java home>/bin/java
    java_bin=$(readlink -f "$(command -v java)")
    java_src=$(dirname "$(dirname "$java_bin")")
  fi
  if [ ! -x "$java_src/bin/java" ] || [ ! -f "$java_src/lib/modules" ] || [ ! -f "$java_src/release" ]; then
    echo "assemble-rootfs: $java_src is not a Java runtime of Java 9 or later (bin/java, lib/modules, release); set JAVA_HOME" >&2
    exit 1
  fi
  java_version=$(sed -n 's/^JAVA_VERSION="\([^"]*\)"$/\1/p' "$java_src/release")
  java_major=${java_version%%.*}
  case "$java_major" in
    '' | *[!0-9]*) java_major=0 ;;
  esac
  if [ "$java_major" -lt 17 ]; then
    echo "assemble-rootfs: $java_src is Java '$java_version'; Spark's executors on Flint need Java 17 or later (set JAVA_HOME)" >&2
    exit 1
  fi
fi

rm -rf "$out"
mkdir -p "$out/opt/flint/bin" "$out/opt/flint/examples" "$out/opt/flint/work" \
  "$out/bin" "$out/usr/bin" "$out/etc" "$out/tmp"
chmod 1777 "$out/tmp" "$out/opt/flint/work"
out=$(cd "$out" && pwd)

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

# The worker variant: the Java runtime, its libraries, and Spark's jars.
if [ -n "$spark_src" ]; then
  # What a JRE needs of a JDK. Left out: the JDK's symbol table for javac and its sources,
  # and the libraries that need X11 (Debian puts them in openjdk-17-jre, not -headless).
  java_skip="lib/ct.sym lib/src.zip lib/libawt_xawt.so lib/libjawt.so lib/libsplashscreen.so lib/libatk-wrapper.so"
  java_entries=
  for e in bin/java bin/keytool conf lib legal release; do
    if [ -e "$java_src/$e" ]; then
      java_entries="$java_entries $e"
    fi
  done
  # Regular files, through symbolic links (-L); dangling links are skipped.
  # shellcheck disable=SC2086 # java_entries is a list of relative paths without spaces
  (cd "$java_src" && find -L $java_entries -type f) | while IFS= read -r f; do
    case " $java_skip " in
      *" $f "*) continue ;;
    esac
    mkdir -p "$out$java_dest/$(dirname "$f")"
    cp -L "$java_src/$f" "$out$java_dest/$f"
  done

  # The system libraries of the launcher and of every library the JVM may load. Those in
  # the runtime itself (found through $ORIGIN) are already there; libjvm.so is loaded
  # before the others, so ldd cannot find it from them.
  find "$out$java_dest" -type f \( -name '*.so' -o -perm -u+x \) | while IFS= read -r f; do
    for lib in $(libs_of "$f"); do
      case "$lib" in
        "$out"/*) ;;
        *) copy_lib "$lib" ;;
      esac
    done
    ldd "$f" | awk -v f="$f" '$2 == "=>" && $3 == "not" && $1 != "libjvm.so" {
      print "assemble-rootfs: warning: " f " needs " $1 ", which is not on this machine" > "/dev/stderr"
    }'
  done

  for cmd in bash rm chmod ls; do
    tool "$cmd" "/bin/$cmd"
    for lib in $(libs_of "$out/bin/$cmd"); do
      copy_lib "$lib"
    done
  done

  mkdir -p "$out$spark_dest/jars" "$out$spark_dest/conf"
  cp -RL "$spark_src/jars/." "$out$spark_dest/jars/"
  if [ -d "$spark_src/conf" ]; then
    cp -RL "$spark_src/conf/." "$out$spark_dest/conf/"
  fi
  # Readable by the non-root user whatever the umask of the build was.
  chmod -R a+rX "$out$java_dest" "$out$spark_dest"
  spark_core=$(cd "$out$spark_dest/jars" && ls spark-core_*.jar)
  echo "assemble-rootfs: Java $java_version from $java_src; Spark's jars ($spark_core) from $spark_src" >&2
fi

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
