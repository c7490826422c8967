#!/usr/bin/env bash
# Runs on a lent GPU machine (the device tool), from the repository root, with `.stage/` carried:
#   bash scripts/gpu_chapter.sh CHAPTER [WORKERS] [SECONDS]
# Trains the missing runs of CHAPTER's `gpu` preset (WORKERS processes side by side on the one GPU) for at most
# SECONDS, then packs every result file the grid wrote into $OUT/results-CHAPTER.tar.gz, also when the deadline
# cut the grid short (finished runs are kept). Prepared here by `specvae gpu stage CHAPTER`; unpacked here by
# `specvae gpu unpack results-CHAPTER.tar.gz`. See book/reproducibility.md ("Running the gpu preset").
set -uo pipefail
chapter="${1:?usage: scripts/gpu_chapter.sh CHAPTER [WORKERS] [SECONDS]}"
workers="${2:-4}"
seconds="${3:-540}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/.stage/out}"
mkdir -p "$out" .stage/results
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export SPECVAE_DATA="$root/.stage/data" SPECVAE_WEIGHTS="$root/.stage/weights"
export SPECVAE_RESULTS="$root/.stage/results" SPECVAE_RUNS="${TMPDIR:-/tmp}/specvae-runs"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
start=$(date +%s)
timeout --signal=INT --kill-after=20 "$seconds" \
  python3 -m specvae.cli run "$chapter" --preset gpu --workers "$workers" > "$out/run-$chapter.log" 2>&1
status=$?
echo "grid exit status $status after $(( $(date +%s) - start )) s (124 = deadline reached)"
tail -n 30 "$out/run-$chapter.log"
n=$(find .stage/results -name '*.json' | wc -l)
tar -czf "$out/results-$chapter.tar.gz" -C .stage/results .
echo "packed $n result file(s) into $out/results-$chapter.tar.gz"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
exit 0
