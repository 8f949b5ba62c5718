# session 8 call 1: copy the snapshot to /tmp/repo, prepare Peptides-func with LapPE, start the
# GPS CUDA-graph ensemble and the PyG-loader runs side by side in their own process sessions, wait
T0=$SECONDS
rm -rf /tmp/repo && cp -r .devdata/repo /tmp/repo && cd /tmp/repo
export PYTHONPATH=/tmp/site:/tmp/msrc:/tmp/repo
mkdir -p /tmp/runs/d
nproc; nvidia-smi --query-gpu=name,memory.used --format=csv
/usr/bin/time -v python3 -m graphlab.train.cli data prepare configs/gps/peptides-func.yaml > $R/prep.log 2>&1
echo "prep rc $? done at $((SECONDS - T0)) s"; grep -E "Elapsed|Maximum resident" $R/prep.log; tail -3 $R/prep.log
MT="trainer.max_time={minutes: $MAXMIN, seconds: 0}"
python3 scripts/detached.py start /tmp/runs/d/cg -- python3 -m graphlab.train.cli train configs/gps/peptides-func.yaml data.batch_size=32 task.cuda_graphs=true data.eval_batch_size=512 trainer.deterministic=false "$MT" --seeds 4 --ensemble --ensemble-randomness different --out /tmp/runs/gps-cg
python3 scripts/detached.py start /tmp/runs/d/pyg -- python3 -m graphlab.train.cli train configs/gps/peptides-func.yaml data.batch_size=32 data.loader=pyg data.num_workers=3 trainer.deterministic=false "$MT" --seeds 4 --jobs 4 --out /tmp/runs/gps-pyg
while [ $((SECONDS - T0)) -lt 560 ]; do sleep 5; done
tail -4 /tmp/runs/d/cg/log; tail -4 /tmp/runs/d/pyg/log
find /tmp/runs/gps-pyg -name metrics.csv | head; for f in $(find /tmp/runs -name metrics.csv); do echo "$f $(wc -l < $f)"; done
