#!/bin/sh
# Does kpsim compare print the same tables whatever --jobs is?  Each
# policy's replay has its own model and policy instance; a state shared
# between them would show here as a difference between one job and
# several.  Chaos kpagers and an attacker's run without it are included.
# usage: compare_jobs.sh KPSIM SOURCE_DIR
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for j in 1 3 6; do
	"$1" compare --jobs "$j" --csv --budget 48 \
		--kpagers pool,fcfs,quota,ws,clock-typed,pinned \
		--kpager chaos:seed=3,over=quota --kpager chaos:seed=9,over=ws \
		"$2/traces/recorded/linux-dos.trace" \
		"$2/traces/recorded/mix.trace" > "$tmp/jobs$j.csv" 2> /dev/null
done
test "$(wc -l < "$tmp/jobs1.csv")" -gt 16 || {
	echo "compare_jobs: too few rows"; cat "$tmp/jobs1.csv"; exit 1; }
for j in 3 6; do
	if ! cmp -s "$tmp/jobs1.csv" "$tmp/jobs$j.csv"; then
		diff -u "$tmp/jobs1.csv" "$tmp/jobs$j.csv" | head -20
		echo "compare_jobs: --jobs $j differs from --jobs 1"
		exit 1
	fi
done
echo "compare_jobs: $(wc -l < "$tmp/jobs1.csv") rows, the same with 1, 3 and 6 jobs"
