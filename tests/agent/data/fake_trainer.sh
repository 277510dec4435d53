#!/bin/bash
# A stand-in for sweep-train that keeps its contract with sweep-worker (docs/worker.md):
# `probe` prints devices; `run --job FILE --workdir DIR [--resume]` prints JSON lines,
# writes checkpoints to DIR/checkpoints and resumes from the latest with --resume.
# Tests steer it with environment variables (usually set by a wrapper script):
#   FAKE_PROBE_FILE   file printed by `probe` (default: one CPU); FAKE_PROBE_EXIT
#   FAKE_STEPS        steps (default: "steps" of the job's JSON, else 5)
#   FAKE_STEP_SLEEP   seconds per step (default 0.02)
#   FAKE_CKPT_EVERY   checkpoint every N steps (default 2)
#   FAKE_FAIL_AT_STEP stop at this step with FAKE_EXIT (code) or FAKE_SIGNAL (raise it)
#   FAKE_FAIL_ONCE    marker file: fail only if it does not exist yet (then create it)
#   FAKE_STDERR       line written to stderr before failing
#   FAKE_NO_FINAL     1: exit 0 without the final line
#   FAKE_FINAL_LINE   printed instead of the complete final line
#   FAKE_LINES_FILE   file whose lines are printed, as they are, after the start line
#   FAKE_BIG_LINES    "N:BYTES": N step lines padded to BYTES each, printed before the final line
#   FAKE_IGNORE_TERM  1: ignore SIGTERM (to exercise the SIGKILL after the grace period)
set -u
cmd=${1:-}
shift || true
if [ "$cmd" = probe ]; then
  if [ -n "${FAKE_PROBE_FILE:-}" ]; then cat "$FAKE_PROBE_FILE"; else
    echo '{"devices":[{"kind":"cpu","index":0,"name":"fake-cpu","memory_bytes":1073741824}]}'
  fi
  exit "${FAKE_PROBE_EXIT:-0}"
fi
if [ "$cmd" != run ]; then echo "fake_trainer: unknown command '$cmd'" >&2; exit 2; fi
job="" workdir="" resume=0
while [ $# -gt 0 ]; do
  case "$1" in
    --job) job=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    *) echo "fake_trainer: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -f "$job" ] || { echo "fake_trainer: no job file $job" >&2; exit 2; }
[ "${FAKE_IGNORE_TERM:-0}" = 1 ] && trap '' TERM
echo $$ > "$workdir/trainer.pid"
job_steps=$(grep -o '"steps": *[0-9]*' "$job" | head -n 1 | grep -o '[0-9]*$')
steps=${FAKE_STEPS:-${job_steps:-5}}
every=${FAKE_CKPT_EVERY:-2}
ckpt="$workdir/checkpoints"
start=0
if [ "$resume" = 1 ] && [ -f "$ckpt/latest" ]; then start=$(cat "$ckpt/latest"); fi
echo "fake_trainer: run $job from step $start (resume=$resume)" >&2
echo "{\"type\":\"start\",\"resumed_from\":$start,\"cuda_visible_devices\":\"${CUDA_VISIBLE_DEVICES-unset}\"}"
[ -n "${FAKE_LINES_FILE:-}" ] && cat "$FAKE_LINES_FILE"
for ((k = start + 1; k <= steps; k++)); do
  sleep "${FAKE_STEP_SLEEP:-0.02}"
  echo "{\"type\":\"step\",\"step\":$k,\"total_steps\":$steps,\"loss\":$((1000 - k)).5,\"lr\":0.001,\"tokens_per_s\":100.0,\"peak_mem_bytes\":1,\"tokens\":$((k * 64)),\"elapsed_s\":0.1}"
  if [ "$every" -gt 0 ] && [ $((k % every)) -eq 0 ]; then
    mkdir -p "$ckpt"
    echo "$k" > "$ckpt/step-$k"
    echo "$k" > "$ckpt/latest.tmp" && mv "$ckpt/latest.tmp" "$ckpt/latest"
    echo "{\"type\":\"checkpoint\",\"step\":$k,\"path\":\"$ckpt/step-$k\"}"
  fi
  if [ "$k" = "${FAKE_FAIL_AT_STEP:-0}" ]; then
    if [ -n "${FAKE_FAIL_ONCE:-}" ] && [ -e "$FAKE_FAIL_ONCE" ]; then continue; fi
    [ -n "${FAKE_FAIL_ONCE:-}" ] && touch "$FAKE_FAIL_ONCE"
    [ -n "${FAKE_STDERR:-}" ] && echo "$FAKE_STDERR" >&2
    if [ -n "${FAKE_SIGNAL:-}" ]; then kill -s "$FAKE_SIGNAL" $$; sleep 5; fi
    exit "${FAKE_EXIT:-1}"
  fi
done
if [ -n "${FAKE_BIG_LINES:-}" ]; then
  big_n=${FAKE_BIG_LINES%%:*} big_bytes=${FAKE_BIG_LINES##*:}
  pad=$(head -c "$((big_bytes - 64))" /dev/zero | tr '\0' x)
  for ((b = 1; b <= big_n; b++)); do
    printf '{"type":"step","step":%d,"loss":1.0,"pad":"%s"}\n' "$((steps + b))" "$pad"
  done
fi
[ "${FAKE_NO_FINAL:-0}" = 1 ] && exit 0
if [ -n "${FAKE_FINAL_LINE:-}" ]; then echo "$FAKE_FINAL_LINE"; exit 0; fi
job_id=$(grep -o '"job_id": *"[^"]*"' "$job" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
echo "{\"type\":\"final\",\"job_id\":\"$job_id\",\"kind\":\"train\",\"method\":\"lora\",\"track\":\"A\",\"seed\":0,\"steps\":$steps,\"final_loss\":$((1000 - steps)).5,\"resumed_from\":$start,\"scores\":{},\"total_params\":1000,\"trainable_params\":10,\"wall_s\":1.0,\"peak_mem_bytes\":1}"
exit 0
