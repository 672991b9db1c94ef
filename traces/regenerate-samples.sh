#!/bin/sh
# Regenerates traces/samples/: traces of real i386 programs from Debian's
# busybox-static:i386, made by `kpsim import lackey` (what a run touches)
# and by `kpsim import proc` (what a process holds, once, while it sleeps).
#
# The memory trace comes from valgrind's lackey (valgrind --tool=lackey
# --trace-mem=yes) run under `setarch i386 -3 -R`, so that every address
# is below 0xC0000000.  That needs a kernel that runs i386 binaries.  Where
# it does not (no IA-32 emulation: "Exec format error"), the script
# runs the programs under qemu-i386 instead (-R 0xC0000000 keeps them below
# 3 GiB) with traces/tools/qemu-lackey.c, a QEMU plugin that logs in
# lackey's format; its header comes from Debian's qemu 7.2 source package.
# Each sample's README line says which tool made it.  Inputs are fixed and
# the environment empty, so a rerun gives the same lackey traces.
#
# The /proc snapshot (bb-proc-sh) is of `busybox sh` after it has read its
# own /proc/self/maps, blocked opening a FIFO.  Run natively, it is what
# `kpsim import proc PID` sees.  Under qemu-i386 the process is a 64-bit
# qemu to /proc, so the snapshot is put together in a directory for
# `kpsim import proc DIR`: maps is the guest's own view (qemu emulates
# /proc/self/maps for its guest; it gives each host mapping the rights of
# its first page, so busybox's text shows as r--p and imports as r, not
# x: the same to the model, whose IA-32 PTEs have no execute bit), and
# pagemap is the host's pagemap of the guest's memory (-B 0x100000000 puts
# guest address 0 at host address 4 GiB).  Which pages are present depends
# on the host's page cache (fault-around maps up to 16 cached file pages at
# one fault), so this sample may vary between machines.
#
# KPSIM_TESTDATA=DIR also writes that snapshot's maps and a run-length
# excerpt of its pagemap to DIR, as tests/data/i386-busybox-sh.* were made:
# "VA PAGES ENTRY" lines for the runs of present pages, the entries' PFN
# bits (0-54) cleared (the importer reads only bits 62 and 63).
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

# A program's pid and its parent's show in its work (busybox sh formats
# $$ and $PPID: one more digit, a few more instructions).  In a pid
# namespace of its own each run is pid 1 of parent 0.
if unshare --pid --fork true 2>/dev/null; then
	pidns="unshare --pid --fork"
else
	pidns=
	echo "regenerate-samples: no pid namespace; bb-sh may vary" >&2
fi

trace() {       # trace NAME ARGS...: the lackey-format log of busybox ARGS
	name=$1
	shift
	(
		cd "$work/files"
		if [ "$tool" = valgrind-lackey ]; then
			$pidns env -i setarch i386 -3 -R valgrind --tool=lackey \
			    --trace-mem=yes --log-file="$work/$name.log" \
			    "$bb" "$@" >/dev/null
		else
			$pidns env -i qemu-i386 -R 0xC0000000 -plugin \
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

# snapshot NAME: the /proc view of an i386 busybox sh asleep, imported.
snapshot() {
	name=$1
	snap=$work/$name.snap
	mkdir -p "$snap"
	rm -f "$work/fifo"
	mkfifo "$work/fifo"
	# The shell reads its own maps (a builtin loop: no child process),
	# says so, and blocks opening the FIFO until we release it.
	script='while read -r l; do echo "$l"; done < /proc/self/maps > "$1/maps"; : > "$1/ready"; read x < "$2"'
	cd "$work/files"
	if [ "$tool" = valgrind-lackey ]; then
		env -i setarch i386 -3 -R "$bb" sh -c "$script" sh "$snap" \
		    "$work/fifo" &
	else
		env -i qemu-i386 -R 0xC0000000 -B 0x100000000 "$bb" sh -c \
		    "$script" sh "$snap" "$work/fifo" &
	fi
	pid=$!
	cd "$work"
	i=0
	while [ ! -e "$snap/ready" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "regenerate-samples: $name did not start" >&2
			kill "$pid"
			exit 1
		fi
		sleep 0.1
	done
	sleep 0.5       # into open(2) of the FIFO, asleep
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "regenerate-samples: $name ended before its snapshot" >&2
		exit 1
	fi
	if [ "$tool" = valgrind-lackey ]; then
		src=$pid
	else
		# The guest's 3 GiB from host address 4 GiB: 8 bytes a page,
		# read 4 KiB (512 pages) at a time.
		dd if=/proc/$pid/pagemap of="$snap/pagemap" bs=4096 \
		   skip=$((0x100000000 / 4096 * 8 / 4096)) \
		   count=$((0xC0000000 / 4096 * 8 / 4096)) conv=sparse \
		   status=none
		src=$name.snap  # relative: the same comment each run
	fi
	rm -f "$out/$name.trace" "$out/$name.trace.gz"
	"$kpsim" import proc "$src" --name "$name" -o "$out/$name.trace" \
	    2>"$name.stats"
	if [ -n "${KPSIM_TESTDATA:-}" ]; then
		[ -e "$snap/pagemap" ] || dd if=/proc/$pid/pagemap \
		    of="$snap/pagemap" bs=4096 count=$((0xC0000000 / 4096 * \
		    8 / 4096)) conv=sparse status=none
		cp "$snap/maps" "$KPSIM_TESTDATA/i386-busybox-sh.maps"
		od -A d -t x8 -v -w8 "$snap/pagemap" | awk '
		NF == 2 && $2 != "0000000000000000" {
			d3 = substr($2, 3, 1)
			f = substr($2, 1, 2) (index("89abcdef", d3) ? "8" : "0") \
			    "0000000000000"
			pg = $1 / 8
			if (f == flag && pg == start + n) {
				n++
				next
			}
			if (n)
				printf "%08x %d %s\n", start * 4096, n, flag
			start = pg
			n = 1
			flag = f
		}
		END {
			if (n)
				printf "%08x %d %s\n", start * 4096, n, flag
		}' > "$KPSIM_TESTDATA/i386-busybox-sh.pagemap"
	fi
	echo > "$work/fifo"
	wait "$pid"
	if [ "$tool" = valgrind-lackey ]; then by=/proc; else by="qemu-i386, /proc"; fi
	printf '| `%s` | `busybox sh -c %s` (asleep) | %s | %s |\n' "$name" \
	    "'while read ... < /proc/self/maps; read x < FIFO'" "$by" \
	    "$(sed 's/^kpsim import: //' "$work/$name.stats")" >> "$work/table"
}

snapshot bb-proc-sh

{
	echo "# traces/samples/"
	echo
	echo "Traces of real i386 programs (Debian's busybox-static:i386), made by"
	echo "\`traces/regenerate-samples.sh\` with \`kpsim import lackey\` (a run:"
	echo "each page at its first touch, and again at its first write) and"
	echo "\`kpsim import proc\` (a snapshot: each page the process holds). The"
	echo "tool column says what traced them (see the script for how, and for"
	echo "what may vary); the last column is what the importer counted."
	echo
	echo "| trace | program | traced by | input lines, instructions, data accesses, pages: events |"
	echo "|---|---|---|---|"
	cat "$work/table"
} > "$out/README.md"
echo "regenerate-samples: $(ls "$out" | wc -l) files in $out ($tool)"
