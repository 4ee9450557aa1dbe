#!/usr/bin/env bash
# Semantic distillation on the demo corpus (docs/semantic.md): a phone teacher, then three codeclab-16k-small
# codecs with the same data, bitrate (1.6 kbps) and budget (1500 steps x 8 x 1 s): no distillation, the
# SpeechTokenizer D-axis cosine loss, and Mimi's split quantizer. Then the phone probe and reconstruction.
#   benchmarks/semantic_experiment.sh DEMO_CORPUS_DIR OUT_DIR
set -eu
CORPUS=$(realpath "$1"); OUT=$(realpath -m "$2"); mkdir -p "$OUT"; cd "$OUT"
CL=${CODECLAB:-codeclab}
$CL teacher train --data "$CORPUS/manifest.jsonl" --out teacher --steps 1500
COMMON="--preset codeclab-16k-small --data $CORPUS/manifest.jsonl --steps 1500 --batch-size 8 --segment-seconds 1.0 \
  --set adversarial=false --set lr=1e-3 --set warmup_steps=100 --set num_workers=1 --set log_every=50 \
  --set validate_every=1500 --set checkpoint_every=500 --set teacher_cache=$OUT/cache"
export OMP_NUM_THREADS=1  # the three runs share the machine evenly
$CL train $COMMON --out runs/plain > plain.log 2>&1 &
$CL train $COMMON --out runs/cosine --semantic teacher --semantic-loss cosine --semantic-weight 5 > cosine.log 2>&1 &
$CL train $COMMON --out runs/split --semantic teacher --semantic-loss split --semantic-weight 5 > split.log 2>&1 &
wait
unset OMP_NUM_THREADS
for r in plain cosine split; do
  $CL tokenize "$CORPUS/manifest.jsonl" --out tokens/$r --codec "$OUT/runs/$r/codec"
done
$CL bench probe --store tokens/plain --store tokens/cosine --store tokens/split \
  --manifest "$CORPUS/manifest.jsonl" --out bench/probe
python3 - "$CORPUS" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(f"{sys.argv[1]}/manifest.jsonl")]
with open("validation.jsonl", "w") as fh:
    for r in rows:
        if r.get("split") == "validation":
            r["path"] = f"{sys.argv[1]}/{r['path']}"
            r.pop("phones", None)
            fh.write(json.dumps(r) + "\n")
PY
$CL bench recon --codec "$OUT/runs/plain/codec" --codec "$OUT/runs/cosine/codec" --codec "$OUT/runs/split/codec" \
  --data validation.jsonl --out bench/recon --n-q 4 --metrics mel_distance,stft_distance,si_sdr,pesq_wb,stoi
