#!/usr/bin/env bash
# Create .venv at the repo root and install the pinned, measured-working stack.
#
# Why a script and not a requirements file: mmcv 2.1.0 (the newest mmcv that mmdet 3.3 / mmseg 1.2
# accept) has no wheel for torch 2.14 on the registry, so it is built from the sdist with its ops,
# which needs three fixes (a setuptools with pkg_resources, --no-build-isolation so it sees torch,
# and -std=c++20 because torch 2.14 headers refuse C++17). The build takes ~22 min on 2 cores, so
# the wheel is cached in ~/.cache/iformer-mm/wheels and a prebuilt wheel on PIP_FIND_LINKS is used.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
CACHE="${IFORMER_MM_WHEEL_CACHE:-$HOME/.cache/iformer-mm/wheels}"
MMCV_VERSION=2.1.0

log() { printf '[install] %s\n' "$*"; }

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip)
mkdir -p "$CACHE"
# The wheel cache is always searched; PIP_FIND_LINKS (e.g. ../shared/wheels from .ci/run) too.
export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$CACHE /opt/wheels"

log "base tools"
# setuptools 80.8.0: still has pkg_resources (mmcv's setup.py and mmengine's `mmdet::` config
# lookup import it; 82 removed it) and warns about it only as a DeprecationWarning, hidden by
# default in library code; 80.9 - 81 raise a UserWarning in every user process that imports
# mmengine (measured: 80.9.0 warns, 80.8.0 does not).
SETUPTOOLS="setuptools==80.8.0"
"${PIP[@]}" install -q --upgrade pip "$SETUPTOOLS" wheel ninja
log "torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" install -q "torch==2.14.1" "torchvision==0.29.1"

log "mmengine and mmcv's runtime dependencies"
"${PIP[@]}" install -q "mmengine==0.10.7" addict packaging pyyaml yapf opencv-python Pillow numpy

mmcv_has_ops() { "$VENV/bin/python" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; }

if ! mmcv_has_ops; then
  # A wheel on the find-links (cache or shared) is preferred; --no-index keeps pip from the sdist.
  if "${PIP[@]}" install -q --no-deps --no-index "mmcv==$MMCV_VERSION" 2>/dev/null && mmcv_has_ops; then
    log "mmcv $MMCV_VERSION installed from a prebuilt wheel"
  else
    log "building mmcv $MMCV_VERSION with ops from source (~22 min on 2 cores)"
    "${PIP[@]}" uninstall -q -y mmcv 2>/dev/null || true
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv hard-codes -std=c++14 / -std=c++17.
    if "$VENV/bin/python" -c "import sys, torch; v=tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if v >= (2, 10) else 1)"; then
      sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    fi
    (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$VENV/bin/python" -m pip wheel -q \
        --no-build-isolation --no-deps -w "$CACHE" .)
    "${PIP[@]}" install -q --no-deps "$CACHE/mmcv-$MMCV_VERSION"-*.whl
  fi
fi
mmcv_has_ops || { echo "[install] ERROR: mmcv $MMCV_VERSION is installed without compiled ops (mmcv._ext missing)" >&2; exit 1; }

log "OpenMMLab toolboxes, timm, deployment runtimes"
# Deployment runtimes, pinned to the versions measured beside torch 2.14.1 (tools/deploy.py runs
# every artifact in its runtime, so the tests exercise each). LiteRT (litert-torch) is left out:
# it pulls transformers, which makes mmpretrain import its multimodal models (transformers 5.x
# breaks them), and needs downgrades of typing_extensions, huggingface_hub, tokenizers, anyio and
# cattrs (docs/deployment.md).
"${PIP[@]}" install -q "mmcv==$MMCV_VERSION" "mmengine==0.10.7" "mmdet==3.3.0" "mmsegmentation==1.2.2" \
    "mmpretrain==1.2.0" "timm>=1.0.31" "coremltools==9.0" "onnx==1.23.2" "onnxruntime==1.31.1" \
    "openvino==2026.4.1" "nncf==3.4.0" "executorch==1.5.1" "torchao==0.18.0" \
    ftfy regex pycocotools "$SETUPTOOLS" pytest "pytest-xdist==3.8.0" matplotlib
# openmim (`mim search iformer-mm`) is NOT installed: its dependency chain (opendatalab ->
# openxlab) pins setuptools 60.2, packaging 24.2, requests 2.28, rich 13.4, tqdm, urllib3 1.26 and
# filelock, i.e. it would downgrade this stack (pip install --dry-run openmim). For `mim search`
# alone, `pip install --no-deps openmim colorama` is enough (tested: tests/test_model_index.py).
log "iformer-mm (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
mmcv_has_ops || { echo "[install] ERROR: mmcv lost its ops during install" >&2; exit 1; }
"$VENV/bin/python" - <<'PY'
import mmcv, mmdet, mmseg, mmpretrain, mmengine, torch, torchvision, timm
import onnxruntime, openvino, nncf, executorch.runtime, torchao, coremltools  # noqa: F401
print('[install] ok: torch', torch.__version__, 'torchvision', torchvision.__version__, 'mmengine', mmengine.__version__,
      'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__,
      'mmpretrain', mmpretrain.__version__, 'timm', timm.__version__, 'onnxruntime', onnxruntime.__version__,
      'openvino', openvino.__version__.split('-')[0], 'nncf', nncf.__version__, 'torchao', torchao.__version__)
PY
