# session 8 call 4: the shared-pool fix on the GPU: CUDA-graph tests, then the 4-seed GPS
# CUDA-graph ensemble on Peptides-func alone for 4 minutes, GPU memory sampled every 5 s
T0=$SECONDS
cd .devdata/repo; export PYTHONPATH=/tmp/site:/tmp/msrc:$PWD
nvidia-smi --query-gpu=timestamp,memory.used --format=csv -l 5 > $R/smi.log 2>&1 &
SMI=$!
python3 -m graphlab.train.cli data prepare configs/gps/peptides-func.yaml > $R/prep.log 2>&1 &
PREP=$!
timeout 120 python3 -m pytest tests/test_cuda_graphs_gpu.py tests/test_checkpoint_writer.py -m gpu -q -rs -p no:cacheprovider > $R/cuda_graphs_tests.log 2>&1
tail -2 $R/cuda_graphs_tests.log; wait $PREP; echo "prep rc $? at $((SECONDS - T0)) s"
timeout 330 python3 -m graphlab.train.cli train configs/gps/peptides-func.yaml data.batch_size=32 task.cuda_graphs=true data.eval_batch_size=512 trainer.deterministic=false "trainer.max_time={minutes: 4, seconds: 0}" --seeds 4 --ensemble --ensemble-randomness different --out /tmp/runs/gps-cg > $R/gps_cg.log 2>&1
echo "gps rc $? at $((SECONDS - T0)) s"; kill $SMI
grep -v "^\s" $R/gps_cg.log | tail -8
python3 - <<'P'
import json, glob
for f in sorted(glob.glob('/tmp/runs/gps-cg/**/metrics.json', recursive=True))[:1]:
    m = json.load(open(f)); print(f, m.get('peak_memory_mb'), m.get('cuda_graphs') or m.get('ensemble', {}).get('cuda_graphs'))
P
sort -t, -k2 -n $R/smi.log | tail -2
cd /tmp/runs && tar czf $R/runs.tgz --exclude='*.ckpt' gps-cg; cd $OUT && tar czf bench.tgz bench && rm -rf bench
