"""TensorBoard output of every job: one writer per run (the driver, or rank 0); tags are `<section>/<metric>`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter


class Telemetry:
    def __init__(self, directory: Path, config_yaml: str):
        self.writer = SummaryWriter(log_dir=str(directory))
        self.writer.add_text("config", "```yaml\n" + config_yaml + "\n```", 0)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def co_selection(self, counts: np.ndarray, names: list[str], step: int) -> None:
        """Heat map of how often two training properties were selected in the same meta-batch."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        size = max(4.0, 0.3 * len(names))
        figure, axis = plt.subplots(figsize=(size + 1.5, size))
        image = axis.imshow(counts, cmap="viridis")
        axis.set_xticks(range(len(names)), labels=[n[:18] for n in names], rotation=90, fontsize=6)
        axis.set_yticks(range(len(names)), labels=[n[:18] for n in names], fontsize=6)
        axis.set_title(f"scheduler co-selection (iteration {step})")
        figure.colorbar(image, ax=axis)
        figure.tight_layout()
        self.writer.add_figure("scheduler/co_selection", figure, step)
        plt.close(figure)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An RGB picture, height x width x 3 (generated molecules, latent projections)."""
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
