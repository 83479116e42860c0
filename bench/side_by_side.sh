#!/usr/bin/env bash
# The live path against a baseline commit, nginx and LiteLLM's proxy, in one run of the shared
# side-by-side harness (../shared/bench, the harness issue 17's goals are measured with).
#
#   bash bench/side_by_side.sh BASE_REF [run_bench.py options...]
#   bash bench/side_by_side.sh HEAD~1 --reps 3 --duration 5 --warmup 2 --conc 1,16 --stream-conc 1 --delays 0
#
# Targets, in this order: nginx and LiteLLM (the harness's --litellm), shadowtap at BASE_REF with
# no candidates ("shadowtap-base"), this checkout with no candidates ("shadowtap") and with two
# candidates at 100% ("shadowtap-2cand"). BASE_REF is installed, without its dependencies, into a
# directory of its own under /tmp and run with this checkout's virtualenv, so both sides use the
# same libraries. Run from the repository root after the README's install.
set -euo pipefail
base="${1:?usage: bench/side_by_side.sh BASE_REF [run_bench.py options...]}"; shift
root="$(git rev-parse --show-toplevel)"
harness="${SHADOWTAP_BENCH_HARNESS:-$root/../shared/bench}"
[ -x "$harness/run_bench.sh" ] || { echo "side_by_side: no harness at $harness (set SHADOWTAP_BENCH_HARNESS)" >&2; exit 2; }
sha="$(git -C "$root" rev-parse --short "$base")"
ref="/tmp/shadowtap-ref-$sha"
if [ ! -x "$ref/bin/shadowtap" ]; then
  rm -rf "$ref" && mkdir -p "$ref/tree" "$ref/bin"
  git -C "$root" archive "$sha" | tar -x -C "$ref/tree"
  "$root/.venv/bin/pip" install -q --no-deps --target "$ref/site" "$ref/tree"
  cat > "$ref/bin/shadowtap" <<WRAPPER
#!/usr/bin/env bash
# shadowtap at $sha, with $root/.venv's libraries
PYTHONPATH="$ref/site" exec "$root/.venv/bin/python" -c 'import sys; from shadowtap.core.cli import main; sys.argv[0] = "shadowtap"; sys.exit(main())' "\$@"
WRAPPER
  chmod +x "$ref/bin/shadowtap"
fi
export SHADOWTAP_VENV="$root/.venv"
exec bash "$harness/run_bench.sh" --litellm \
  --proxy "shadowtap-base=SHADOWTAP_VENV=$ref bash {bench_dir}/proxies/shadowtap.sh {port} 0" \
  --proxy 'shadowtap=bash {bench_dir}/proxies/shadowtap.sh {port} 0' \
  --proxy 'shadowtap-2cand=bash {bench_dir}/proxies/shadowtap.sh {port} 2' \
  "$@"
