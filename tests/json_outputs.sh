#!/bin/sh
# Every --json output kpsim has, checked by a strict JSON parser
# (json_check): kpsim run on bundled and built guests, including a killed
# one and a run that stops early; kpsim replay of every stored trace under
# the in-kernel pool and several kpagers (chaos among them, for revocations
# and killed tasks); kpsim compare on a scenario, a trace, two inputs at
# once, and an attacker that is not in the trace.
# Usage: json_outputs.sh KPSIM JSON_CHECK SOURCE_DIR MACHINE_GUEST
set -u
kpsim=$1 check=$2 src=$3 guest=$4
out=$(mktemp -d "${TMPDIR:-/tmp}/kpsim-json.XXXXXX") || exit 2
trap 'rm -rf "$out"' EXIT
n=0 bad=0

# one NAME COMMAND...: runs it (its exit status may be anything: a killed
# guest is still reported), and checks that standard output is JSON.
one() {
	name=$1
	shift
	n=$((n + 1))
	"$@" > "$out/$n.json" 2> "$out/$n.err"
	if ! "$check" "$out/$n.json"; then
		echo "not JSON: $name: $*" >&2
		head -c 600 "$out/$n.json" >&2
		echo >&2
		bad=$((bad + 1))
	fi
}

one run-hello "$kpsim" run --json hello
one run-two "$kpsim" run --json --kpager fcfs:frames=128 "touch 16" fig3
one run-chaos "$kpsim" run --json --kpager chaos:seed=5 linuxlike
one run-killed "$kpsim" run --json "$guest ud2"
one run-pool "$kpsim" run --json --kmem pool "spawn 32" "mapper 4"
for t in "$src"/traces/recorded/* "$src"/traces/samples/*.trace; do
	for p in "--kmem pool" "--kpager fcfs" "--kpager ws:pool=64" \
	         "--kpager chaos:seed=9"; do
		# shellcheck disable=SC2086 # $p is two words on purpose
		one "replay-$(basename "$t")" "$kpsim" replay $p --mem 16M \
			--json "$t"
	done
done
one compare-default "$kpsim" compare --json
one compare-two "$kpsim" compare --json --kpagers pool,quota,chaos:seed=2 \
	mix "$src/traces/samples/bb-sort.trace"
one compare-no-attacker "$kpsim" compare --json --attackers nobody \
	"$src/traces/recorded/linux-dos.trace"
one compare-attacker-only "$kpsim" compare --json --attackers ptbomb \
	"$src/traces/recorded/ptbomb.trace"

echo "json_outputs: $n outputs checked, $bad not JSON"
[ "$bad" -eq 0 ]
