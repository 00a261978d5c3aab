"""Write docs/figures/synthfer_noise.png: where SynthFER's wrong labels fall (version 3,
default settings, seed 0), from the meta file of the default dataset.

    tan data synth --out data/synthfer      # if not there yet
    python docs/make_synthfer_figure.py [data/synthfer]
"""

import sys
from pathlib import Path

import pandas as pd

from tanlib.analysis import plot_noise_by_intensity, save_figure

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "data" / "synthfer")
    meta = pd.read_csv(root / "synthfer_meta.csv", keep_default_na=False)
    meta["noisy"] = meta["noisy"].astype(str).str.lower() == "true"
    save_figure(plot_noise_by_intensity(meta), REPO / "docs" / "figures" / "synthfer_noise")
