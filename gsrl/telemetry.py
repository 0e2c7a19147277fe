"""TensorBoard output of every job: one writer per run (the driver, or rank 0); tags are `<section>/<metric>`.

Besides the scalars, a run's event files carry what makes them readable without the code:
- the resolved config, as text;
- an HParams session: every config key, flattened to `section.key`, and the job's result metrics
  (`result/...`). Both live in the sub-run `hparams/`, so TensorBoard's HParams view lists those
  metrics rather than every scalar, and compares runs of any config side by side;
- when the job has a `Dashboard`, a custom-scalars layout (the charts that matter first,
  infrastructure last) and a one-line description of each tag, shown beside its chart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import scalar as scalar_summary

HPARAMS_RUN = "hparams"  # sub-run of tensorboard/ holding the HParams session and the result metrics


@dataclass(frozen=True)
class Chart:
    """One custom-scalars chart: tags, or regular expressions over tags, drawn on shared axes."""

    title: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Dashboard:
    """What a job's TensorBoard opens on: sections of charts in reading order, and what each tag means."""

    sections: tuple[tuple[str, tuple[Chart, ...]], ...]
    descriptions: Mapping[str, str]  # a tag, or a `section/` prefix covering every tag under it

    def layout(self) -> dict[str, dict[str, list]]:
        """The layout in the form of SummaryWriter.add_custom_scalars."""
        return {section: {chart.title: ["Multiline", list(chart.tags)] for chart in charts}
                for section, charts in self.sections}

    def describe(self, tag: str) -> str | None:
        if tag in self.descriptions:
            return self.descriptions[tag]
        return self.descriptions.get(tag.rsplit("/", 1)[0] + "/")

    def covers(self, tag: str) -> bool:
        """Whether some chart shows `tag` (the custom-scalars plugin matches tags as regular expressions)."""
        return any(re.fullmatch(pattern, tag) for _, charts in self.sections for chart in charts
                   for pattern in chart.tags)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | float | str]:
    """`section.key` -> an HParams value: numbers and booleans as they are, anything else as text."""
    flat: dict[str, bool | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, bool | int | float) and not (isinstance(value, float) and not math.isfinite(value)):
            flat[name] = value
        else:
            flat[name] = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")
    return flat


class Telemetry:
    def __init__(self, directory: Path, config: Mapping[str, Any], dashboard: Dashboard | None = None):
        """`directory` is a run directory's tensorboard/; `config` is the job's resolved config, whose keys
        become the run's hyperparameters under the run directory's name."""
        directory = Path(directory)
        self.dashboard = dashboard
        self.writer = SummaryWriter(log_dir=str(directory))
        self.writer.add_text("config", "```yaml\n" + yaml.safe_dump(dict(config), sort_keys=False) + "\n```", 0)
        if dashboard is not None:
            self.writer.add_custom_scalars(dashboard.layout())
        self._described: set[str] = set()
        hparams_dir = directory / HPARAMS_RUN
        first_session = not any(hparams_dir.glob("events.out.tfevents.*"))
        self.results_writer = SummaryWriter(log_dir=str(hparams_dir))
        if first_session:  # a resumed run keeps its session; its results are appended
            self.results_writer.file_writer.add_summary(
                hparams_pb(flatten(config), trial_id=directory.parent.name))

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Finite values only; a tag's first value in this event file carries the dashboard's description."""
        for tag, value in values.items():
            if value is None or not math.isfinite(value):
                continue
            summary = scalar_summary(tag, float(value))
            description = self.dashboard.describe(tag) if self.dashboard and tag not in self._described else None
            if description:
                summary.value[0].metadata.summary_description = description
                self._described.add(tag)
            self.writer.file_writer.add_summary(summary, step)

    def results(self, values: dict[str, float], step: int) -> None:
        """The run's result metrics (`result/<name>`), the columns of TensorBoard's HParams view; the last
        value written is the one shown, so a run in progress shows its figures so far."""
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                self.results_writer.add_scalar(f"result/{name}", value, step)

    def co_selection(self, counts: np.ndarray, names: list[str], step: int) -> None:
        """Heat map of how often two training properties were selected in the same meta-batch."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = list(names)
        label_inches = 0.07 * max((len(label) for label in labels), default=0)
        cells = max(4.0, 0.32 * len(names))
        figure, axis = plt.subplots(figsize=(cells + label_inches + 2.0, cells + label_inches + 0.8))
        image = axis.imshow(counts, cmap="viridis")
        axis.set_xticks(range(len(names)), labels=labels, rotation=90, fontsize=7)
        axis.set_yticks(range(len(names)), labels=labels, fontsize=7)
        axis.set_xlabel("training property")
        axis.set_ylabel("training property")
        axis.set_title(f"meta-batches that selected both properties, iterations 1-{step}\n"
                       "(diagonal: meta-batches that selected the property)", fontsize=9)
        figure.colorbar(image, ax=axis, label="meta-batches")
        figure.tight_layout()
        self.writer.add_figure("scheduler/co_selection", figure, step)
        plt.close(figure)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An RGB picture, height x width x 3 (generated molecules, latent projections)."""
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()
        self.results_writer.flush()

    def close(self) -> None:
        self.writer.close()
        self.results_writer.close()
