#!/usr/bin/env bash
# The packages the GPU machine lacks, as wheels in one folder (.whl/, ignored by git) that
# travels with the working tree to the device machine (at most ~60 MB in all).
#
#   bash benchmarks/gpu_wheels.sh            # here, where pip reaches PyPI
#   # there, first in the command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#
# The GPU machine runs CPython 3.12 on manylinux x86_64 with CUDA 13, and has torch,
# transformers, peft, accelerate and triton already: these are bitsandbytes and what Unsloth
# needs beyond them. --no-deps keeps pip from pulling a second torch. Unsloth's studio/ (82 MB of
# web UI) and bitsandbytes' libraries for other CUDA versions are dropped to fit the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.whl
PACKAGES=(
  bitsandbytes==0.50.2
  unsloth==2026.10.9 unsloth_zoo cut_cross_entropy torchao
  trl==1.15.0 tyro docstring-parser typeguard shtab
  datasets==4.3.0 dill multiprocess json5 nest-asyncio structlog msgspec
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection
)
rm -rf "$DEST" && mkdir -p "$DEST"
PLATFORMS=()
for n in 17 24 27 28 31 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]}" --platform manylinux2014_x86_64 \
  --platform any -d "$DEST" "${PACKAGES[@]}"

# Repack: a wheel is a zip; drop the parts no row uses.
slim() {  # slim WHEEL PATTERN...   (zip -d of the members matching each pattern)
  local wheel=$1; shift
  for pattern in "$@"; do zip -q -d "$wheel" "$pattern" >/dev/null 2>&1 || true; done
}
slim "$DEST"/unsloth-*.whl 'unsloth/studio/*'
slim "$DEST"/bitsandbytes-*.whl 'bitsandbytes/libbitsandbytes_cuda1[0-2]*' \
  'bitsandbytes/libbitsandbytes_cuda13[1-9]*'
# torchao: keep torchao/testing (Unsloth imports it); drop nothing else we can't prove unused.
du -sh "$DEST"
ls "$DEST"
