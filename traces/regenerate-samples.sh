#!/bin/sh
# Regenerates traces/samples/: traces of real i386 programs from Debian's
# busybox-static:i386, made by `kpsim import lackey`.
#
# The memory trace comes from valgrind's lackey (valgrind --tool=lackey
# --trace-mem=yes) run under `setarch i386 -3 -R`, so that every address
# is below 0xC0000000.  That needs a kernel that runs i386 binaries.  Where
# it does not (CONFIG_IA32_EMULATION off, "Exec format error"), the script
# runs the programs under qemu-i386 instead (-R 0xC0000000 keeps them below
# 3 GiB) with traces/tools/qemu-lackey.c, a QEMU plugin that logs in
# lackey's format; its header comes from Debian's qemu 7.2 source package.
# Each sample's README line says which tool made it.  Inputs are fixed and
# the environment empty, so a rerun gives the same traces.
#
# usage: traces/regenerate-samples.sh [KPSIM]   (as root: it installs
#        valgrind and, if needed, qemu-user; it downloads and unpacks
#        busybox-static:i386 without installing it, and takes the i386
#        architecture it enables for that away again)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kpsim=${1:-$here/../build/sim/kpsim}
case $kpsim in /*) ;; *) kpsim=$PWD/$kpsim ;; esac
out=$here/samples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

apt-get install -y valgrind file >/dev/null
# Debian's i386 busybox, unpacked here: an i386 package index must not
# outlive the script (a mirror's stale i386 index fails apt-get update).
had_i386=$(dpkg --print-foreign-architectures | grep -c '^i386$' || true)
dpkg --add-architecture i386
apt-get update >/dev/null || true      # one stale index must not stop us
(cd "$work" && apt-get download busybox-static:i386 >/dev/null)
if [ "$had_i386" = 0 ]; then
	dpkg --remove-architecture i386
	apt-get update >/dev/null || true
fi
dpkg-deb -x "$work"/busybox-static_*_i386.deb "$work/root"
mkdir -p "$work/files"
cp "$work/root/bin/busybox" "$work/files/busybox"
bb=./busybox            # run from $work/files: the same argv[0] every time
if ! file -L "$work/files/busybox" | grep -q 'Intel 80386'; then
	echo "regenerate-samples: $bb is not the i386 busybox" >&2
	exit 1
fi

# How to trace: valgrind natively, or qemu-i386 with the plugin.
if (cd "$work/files" && setarch i386 -3 -R "$bb" true) 2>/dev/null; then
	tool=valgrind-lackey
else
	tool=qemu-lackey
	apt-get install -y qemu-user >/dev/null
	(
		cd "$work"
		printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			> /etc/apt/sources.list.d/kpsim-qemu-src.sources
		apt-get update >/dev/null || true
		apt-get source --download-only qemu >/dev/null
		rm -f /etc/apt/sources.list.d/kpsim-qemu-src.sources
		tar xJf qemu_7.2*.orig.tar.xz --wildcards '*/include/qemu/qemu-plugin.h'
		cc -shared -fPIC -O2 -I"$(echo qemu-7.2*/include/qemu)" \
		   -o qemu-lackey.so "$here/tools/qemu-lackey.c"
	)
fi

trace() {       # trace NAME ARGS...: the lackey-format log of busybox ARGS
	name=$1
	shift
	(
		cd "$work/files"
		if [ "$tool" = valgrind-lackey ]; then
			env -i setarch i386 -3 -R valgrind --tool=lackey \
			    --trace-mem=yes --log-file="$work/$name.log" \
			    "$bb" "$@" >/dev/null
		else
			env -i qemu-i386 -R 0xC0000000 -plugin \
			    "$work/qemu-lackey.so,outfile=$work/$name.log" \
			    "$bb" "$@" >/dev/null
		fi
	)
	rm -f "$out/$name.trace" "$out/$name.trace.gz"
	(cd "$work" && "$kpsim" import lackey "$name.log" --name "$name" \
	    -o "$out/$name.trace" 2>"$name.stats")
	if [ "$(wc -c < "$out/$name.trace")" -ge 65536 ]; then
		gzip -n -9 "$out/$name.trace"
	fi
	printf '| `%s` | `busybox %s` | %s | %s |\n' "$name" "$*" "$tool" \
	    "$(sed 's/^kpsim import: //' "$work/$name.stats")" >> "$work/table"
}

# Fixed inputs.
mkdir -p "$work/files/dir"
seq 1 2000 | sed 's/^/line /' > "$work/files/numbers.txt"
seq 2000 -7 1 > "$work/files/unsorted.txt"
for i in 1 2 3 4 5 6 7 8; do echo "file $i" > "$work/files/dir/f$i"; done
# ls -l prints the times: fix them.
touch -d '2003-06-01 12:00:00' "$work/files/dir"/* "$work/files/dir"
: > "$work/table"
mkdir -p "$out"

trace bb-true true
trace bb-echo echo hello
trace bb-ls ls -l dir
trace bb-sort sort -n unsorted.txt
trace bb-md5sum md5sum numbers.txt
trace bb-gzip gzip -9 -c numbers.txt
trace bb-sh sh -c 'i=0; while [ $i -lt 200 ]; do i=$((i+1)); done; echo $i'

{
	echo "# traces/samples/"
	echo
	echo "Traces of real i386 programs (Debian's busybox-static:i386), made by"
	echo "\`traces/regenerate-samples.sh\` with \`kpsim import lackey\`. The"
	echo "tool column says what traced them (see the script); the last column"
	echo "is what the importer counted."
	echo
	echo "| trace | program | traced by | input lines, instructions, data accesses, pages: events |"
	echo "|---|---|---|---|"
	cat "$work/table"
} > "$out/README.md"
echo "regenerate-samples: $(ls "$out" | wc -l) files in $out ($tool)"
