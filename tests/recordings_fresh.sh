#!/bin/sh
# Do the recordings in traces/recorded/ still come out of this kpsim byte
# for byte?  If not, the machine changed what it asks of the kernel: look
# at the difference, then run traces/record-workloads.sh to refresh them.
# usage: recordings_fresh.sh KPSIM SOURCE_DIR
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$2/traces/record-workloads.sh" "$1" "$tmp"
for f in "$2"/traces/recorded/*; do
	g=$tmp/$(basename "$f")
	if [ ! -f "$g" ]; then
		echo "recordings_fresh: $(basename "$f") is no longer made"
		exit 1
	fi
	case $f in
	*.gz) zcat "$f" > "$tmp/old"; zcat "$g" > "$tmp/new" ;;
	*) cp "$f" "$tmp/old"; cp "$g" "$tmp/new" ;;
	esac
	if ! diff -u "$tmp/old" "$tmp/new" | head -20; then :; fi
	cmp -s "$tmp/old" "$tmp/new" || {
		echo "recordings_fresh: $(basename "$f") differs from a fresh"\
		     "recording (run traces/record-workloads.sh)"
		exit 1
	}
done
echo "recordings_fresh: $(ls "$2/traces/recorded" | wc -l) recordings as made"
