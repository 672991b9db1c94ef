#!/bin/sh
# Regenerates the recordings of the bundled workloads in traces/recorded/:
# each workload with its default arguments, run by `kpsim run --record`
# on the emulated machine with the defaults (64 MiB, in-kernel pool), and
# the scenarios of `kpsim compare`.  Traces of 64 KiB or more are gzipped.
# The simulator is deterministic, so the files come out the same byte for
# byte; tests/CMakeLists.txt (recordings_fresh) checks that they still do.
#
# usage: traces/record-workloads.sh [KPSIM [OUTDIR]]
#   KPSIM   the kpsim binary (default build/sim/kpsim)
#   OUTDIR  where to write (default traces/recorded next to this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kpsim=${1:-$here/../build/sim/kpsim}
out=${2:-$here/recorded}
case $kpsim in /*) ;; *) kpsim=$PWD/$kpsim ;; esac
mkdir -p "$out"

record() {      # record NAME PROGRAM...
	name=$1
	shift
	rm -f "$out/$name.trace" "$out/$name.trace.gz"
	(cd "$out" && "$kpsim" run --record "$name.trace" "$@" >/dev/null)
	if [ "$(wc -c < "$out/$name.trace")" -ge 65536 ]; then
		gzip -n -9 "$out/$name.trace"
	fi
}

for w in hello touch ptbomb fig3 linuxlike pingpong spawn mapper shell; do
	record "$w" "$w"
done
# The scenarios of kpsim compare (sim/compare.c), as kpsim records them.
record linux-dos 'shell 8 1000000' 'ptbomb 256'
record mix linuxlike 'pingpong 200' 'spawn 32' 'mapper 4'
