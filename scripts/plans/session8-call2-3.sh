# session 8 later calls: wait for both detached runs (or WAIT seconds), then pack if both ended
T0=$SECONDS
cd /tmp/repo; export PYTHONPATH=/tmp/site:/tmp/msrc:/tmp/repo
while [ $((SECONDS - T0)) -lt ${WAIT:-560} ] && { [ ! -f /tmp/runs/d/cg/end ] || [ ! -f /tmp/runs/d/pyg/end ]; }; do sleep 3; done
for d in cg pyg; do echo "== $d"; cat /tmp/runs/d/$d/start /tmp/runs/d/$d/end /tmp/runs/d/$d/rc 2>/dev/null; tail -5 /tmp/runs/d/$d/log; done
for f in $(find /tmp/runs -name metrics.csv); do echo "$f $(wc -l < $f)"; done
python3 scripts/summarize_logs.py /tmp/runs/gps-cg/gps-peptides-func /tmp/runs/gps-pyg/gps-peptides-func --curve 2>&1 | tail -60
mkdir -p $R; cp -r /tmp/runs/d $R/detached
cd /tmp/runs && tar czf $R/runs.tgz --exclude='*.ckpt' gps-cg gps-pyg 2>/dev/null
cd $OUT && tar czf bench.tgz bench && rm -rf bench; ls -la $OUT
