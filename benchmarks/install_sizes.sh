#!/bin/bash
# Install sizes of fewclick without and with each extra, in a fresh virtual environment.
#   benchmarks/install_sizes.sh [VENV_DIR]   (default: a temporary folder, removed after)
# Prints one line per step: the extras installed so far and the size of what they added to
# site-packages (apparent size, MB), then checks that the core install imports io, metrics
# and simulate without torch, OpenCV or SciPy.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
V=${1:-$(mktemp -d)/venv}
python3 -m venv "$V"
SP=$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
size() { du -sm --apparent-size "$SP" | cut -f1; }
BASE=$(size)
pip_quiet() { "$V/bin/pip" install -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
pip_quiet "$REPO"
echo "fewclick (no extras): $(( $(size) - BASE )) MB"
"$V/bin/python" - <<'PY'
import sys
import fewclick.io, fewclick.metrics, fewclick.simulate  # noqa: F401
heavy = sorted(m for m in ("torch", "cv2", "scipy", "sklearn", "matplotlib") if m in sys.modules)
print("core imports fewclick.io, fewclick.metrics, fewclick.simulate; optional packages loaded:", heavy or "none")
PY
for extra in image ml server postgres ray; do
  pip_quiet "$REPO[$extra]"
  echo "fewclick + extras up to [$extra]: $(( $(size) - BASE )) MB"
done
