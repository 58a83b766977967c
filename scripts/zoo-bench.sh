#!/bin/sh
# zoo-bench.sh: one UMAP step and one UM step of every testdata/zoo family, oodguard (GoMLX on
# ONNX Runtime) against PyTorch (Debian's python3-torch) on the same architecture, batch 64,
# 2 threads each, alternating; and the peak RSS of a 20-step run of each, in separate processes.
# Prints the `go test -bench` lines, then a markdown table (also written to
# .cache/bench/zoo.md with the raw output in .cache/bench/zoo.txt).
#
#   scripts/zoo-bench.sh [FAMILY-SUBSTRING]      (make bench-zoo; 6-30 minutes on 2 cores: a
#                                                 loaded machine slows PyTorch's 2 threads most)
#   RSS_ONLY=true scripts/zoo-bench.sh           only the peak-RSS runs (about 3 minutes)
#
# Columns: ours and PyTorch img/s (ours: its timed loop; PyTorch: the median of its 4
# processes), ratio ours/PyTorch as the median of 3 rounds [lowest-highest round], peak RSS
# (VmHWM, MB) of each process and its ratio, and each peak's growth over the process's own
# start (ours: the test binary before ONNX Runtime and the model; PyTorch: after importing torch
# and building the model). See unleash.BenchmarkZooStep.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p .cache/bench
bin=.cache/bench/unleash.test
"$GO" test -c -o "$bin" ./unleash
out=.cache/bench/zoo.txt
bt=${BENCHTIME:-1s}
[ "${RSS_ONLY:-false}" = true ] && bt=1x  # each call of the benchmark function runs the RSS processes
( cd unleash && "../$bin" -test.run '^$' -test.bench '^BenchmarkZooStep$' -test.benchtime "$bt" \
	-zoo -zoo.family "${1:-}" -zoo.rss-steps "${RSS_STEPS:-20}" -zoo.rss-only="${RSS_ONLY:-false}" ) 2>&1 | tee "$out"
{
	echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| family | step | ours img/s | PyTorch img/s | ratio median [min-max] | peak RSS ours / PyTorch (MB) | RSS ratio | growth ours / PyTorch (MB) |"
	echo "|---|---|---|---|---|---|---|---|"
	awk '/^BenchmarkZooStep\// {
		split($1, n, "/"); sub(/-[0-9]+$/, "", n[3])
		delete v
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		if (!("img/s" in v)) { printf "| %s | %s | - | - | - | %.0f / %.0f | %.2f | %.0f / %.0f |\n", n[3], n[2], v["rss-MB"], v["torch-rss-MB"], v["rss-ratio"], v["rss-growth-MB"], v["torch-rss-growth-MB"]; next }
		if (!("ratio" in v)) { printf "| %s | %s | %.0f | - | - | %.0f / - | - | %.0f / - |\n", n[3], n[2], v["img/s"], v["rss-MB"], v["rss-growth-MB"]; next }
		printf "| %s | %s | %.0f | %.0f | %.2f [%.2f-%.2f] | %.0f / %.0f | %.2f | %.0f / %.0f |\n", n[3], n[2], v["img/s"], v["torch-img/s"], v["ratio"], v["ratio-min"], v["ratio-max"], v["rss-MB"], v["torch-rss-MB"], v["rss-ratio"], v["rss-growth-MB"], v["torch-rss-growth-MB"]
	}' "$out"
} | tee .cache/bench/zoo.md
