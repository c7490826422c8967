#!/usr/bin/env bash
# Runs on a lent GPU machine (the device tool), from the repository root, with `.stage/` carried:
#   bash scripts/gpu_chapter.sh CHAPTER [WORKERS] [SECONDS] [DATASETS]
# Trains the missing runs of CHAPTER's `gpu` preset on DATASETS (comma-separated, e.g. mnist,cifar10: the data sets
# whose files were staged; empty = every data set) with WORKERS processes side by side on the one GPU, for at most
# SECONDS, then packs the result files this call wrote into $OUT/results-CHAPTER.tar.gz, also when the deadline
# cut the grid short (finished runs are kept). Runs already stored in the checkout's book/results are skipped.
# A call carries at most 64 MiB (the checkout included), so a chapter's data may need several calls:
# `specvae gpu stage CHAPTER` (here) stages, in the chapter's order, the data sets with runs still missing that
# fit, and prints this command with them; `specvae gpu unpack results-CHAPTER.tar.gz` (here) unpacks the results;
# commit them and stage again for the data sets left. See book/reproducibility.md ("Running the gpu preset").
set -uo pipefail
chapter="${1:?usage: scripts/gpu_chapter.sh CHAPTER [WORKERS] [SECONDS] [DATASETS]}"
workers="${2:-4}"
seconds="${3:-540}"
datasets="${4:-}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/.stage/out}"
mkdir -p "$out" .stage/results
# wheels staged for dependencies the device's Python lacks (the chapter's GPU_WHEELS, e.g. lpips)
if compgen -G ".stage/wheels/*.whl" > /dev/null; then
  site="${TMPDIR:-/tmp}/specvae-site"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    .stage/wheels/*.whl || { echo "could not install the staged wheels"; exit 1; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
# the stored results of the checkout, so that runs stored by earlier calls are skipped, not trained again
cp -R book/results/. .stage/results/
(cd .stage/results && find . -type f | sort) > .stage/results-before.txt
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export SPECVAE_DATA="$root/.stage/data" SPECVAE_WEIGHTS="$root/.stage/weights"
export SPECVAE_RESULTS="$root/.stage/results" SPECVAE_RUNS="${TMPDIR:-/tmp}/specvae-runs"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
start=$(date +%s)
timeout --signal=INT --kill-after=20 "$seconds" \
  python3 -m specvae.cli run "$chapter" --preset gpu --workers "$workers" ${datasets:+--datasets "$datasets"} \
  > "$out/run-$chapter.log" 2>&1
status=$?
echo "grid (data sets: ${datasets:-all}) exit status $status after $(( $(date +%s) - start )) s" \
  "(124 = deadline reached)"
tail -n 30 "$out/run-$chapter.log"
# pack only the result files this call wrote (no leftover temporary files of a run the deadline cut short)
(cd .stage/results && find . -type f | sort) > .stage/results-after.txt
comm -13 .stage/results-before.txt .stage/results-after.txt \
  | grep -E '^\./[0-9]{2}_[A-Za-z0-9_]+/[0-9a-f]{16}(\.[A-Za-z0-9_-]+\.npz|\.json)$' > .stage/results-new.txt
n=$(grep -c '\.json$' .stage/results-new.txt)
tar -czf "$out/results-$chapter.tar.gz" -C .stage/results -T .stage/results-new.txt
echo "packed $n result file(s) into $out/results-$chapter.tar.gz"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
exit 0
