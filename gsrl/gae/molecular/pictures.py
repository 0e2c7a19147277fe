"""Pictures of the molecular VGAE: grids of molecules (RDKit drawings) and the latent space coloured by QED.

Each picture goes to TensorBoard and, as a PNG, to the run directory's ``pictures/`` folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import Draw

__all__ = ["latent_projection", "molecule_grid", "publish"]

from gsrl.telemetry import Telemetry


def molecule_grid(molecules: list[Chem.Mol], legends: list[str], per_row: int = 4) -> np.ndarray:
    """RGB image ``[H, W, 3]`` (uint8) of the molecules with a legend under each."""
    image = Draw.MolsToGridImage(molecules, molsPerRow=per_row, subImgSize=(250, 200), legends=legends)
    return np.asarray(image.convert("RGB"))


def latent_projection(codes: torch.Tensor, qed: np.ndarray, title: str) -> np.ndarray:
    """RGB image of the codes' first two principal components, each point coloured by its molecule's QED."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centred = codes - codes.mean(dim=0)
    _, _, components = torch.pca_lowrank(centred, q=2, center=False)
    plane = (centred @ components[:, :2]).numpy()
    figure, axis = plt.subplots(figsize=(6, 5))
    points = axis.scatter(plane[:, 0], plane[:, 1], c=qed, cmap="viridis", s=4, vmin=0.0, vmax=1.0)
    figure.colorbar(points, ax=axis, label="QED")
    axis.set_xlabel("principal component 1")
    axis.set_ylabel("principal component 2")
    axis.set_title(title)
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


def publish(image: np.ndarray, tag: str, step: int, telemetry: Telemetry, directory: Path) -> Path:
    """Add the image to TensorBoard under ``tag`` and save it as ``<directory>/<tag>-<step>.png``."""
    from PIL import Image

    telemetry.image(tag, image, step)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{tag.replace('/', '-')}-{step:04d}.png"
    Image.fromarray(image).save(path)
    return path
