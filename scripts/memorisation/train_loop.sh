# Sourced by train_seeds.sh and cifar_train_seeds.sh: train_seeds S... runs, one seed after
# another, the command that the caller's train_cmd S puts into the array cmd, with its log,
# .cmd and train.wall under $RUNS/seed-S. A seed whose train.wall says rc=0 is skipped; the
# command passes -resume, so an interrupted seed continues from its last epoch.
train_seeds() {
  local S out t0 rc
  for S in "$@"; do
    out=$RUNS/seed-$S/train
    if grep -q "rc=0" "$RUNS/seed-$S/train.wall" 2>/dev/null; then echo "seed $S: done already"; continue; fi
    mkdir -p "$RUNS/seed-$S"
    train_cmd "$S" "$out"
    echo "${cmd[*]}" > "$RUNS/seed-$S/train.cmd"
    t0=$(date +%s)
    echo "seed $S: start $(date -u +%FT%TZ)"
    "${cmd[@]}" >> "$RUNS/seed-$S/train.log" 2>&1
    rc=$?
    echo "seed $S: rc=$rc wall=$(( $(date +%s) - t0 ))s end $(date -u +%FT%TZ)" | tee -a "$RUNS/seed-$S/train.wall"
    [ $rc = 0 ] || return $rc
  done
}
