import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The shared corpora sit beside the checkout (CI and dev machines); an explicit env var wins.
_shared = ROOT.parent / "shared" / "data"
if "PIPELINE_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["PIPELINE_DATA_DIR"] = str(_shared)
