#!/usr/bin/env bash
# The W8A16/W4A16 kernel's variants (kernels/cuda/quant_gemm.cu, Tuning) measured on the
# GPU machine from the gpu-pack (scripts/gpu-check.sh pack): for each setting of
# CONVEYOR_CUDA_QUANT_GEMM_TUNING ("WARPS_M,STAGES,BLOCKS_PER_SM"), the twin test (every
# variant must be right), the per-layer GEMM timing of test_gpu, and `conveyor bench` on
# llama-8b at batch 64 with q4_g128 and q8_r weights.
#
#   bash scripts/gpu/quant-gemm-tuning.sh [SETTING...]
#
# Results to $OUT/quant-gemm-tuning.txt.
set -uo pipefail
# shellcheck source=scripts/gpu/pack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pack-env.sh"
report=$OUT/quant-gemm-tuning.txt
settings=("$@")
[ ${#settings[@]} -gt 0 ] || settings=("1,4,4" "2,4,4" "1,2,4" "2,2,4" "1,4,8" "1,4,2" "1,4,1")

for setting in "${settings[@]}"; do
  export CONVEYOR_CUDA_QUANT_GEMM_TUNING=$setting
  echo "== tuning $setting" | tee -a "$report"
  (cd "$ROOT" && "$PACK/bin/test_gpu" -tc="*W8A16*" 2>&1) | grep -E "ERROR|test cases" |
    tee -a "$report"
  (cd "$ROOT" && CONVEYOR_GPU_BENCH=1 "$PACK/bin/test_gpu" -s -tc="compressed GEMM timing*" 2>&1) |
    grep -E "MESSAGE: (q8_r|q4_g128)" | sed 's/.*MESSAGE: /  /' | tee -a "$report"
  for dtype in q4_g128 q8_r; do
    timeout 60 "$PACK/bin/conveyor" bench --backend cuda --progress off --shape llama-8b \
      --mode continuous --dtype "$dtype" --prompts 64 --input-len 128 --output-len 128 \
      --max-sequences 64 --max-step-tokens 8192 2>&1 | grep -E "^continuous " |
      sed "s/^/  bench $dtype batch 64: /" | tee -a "$report"
  done
done
