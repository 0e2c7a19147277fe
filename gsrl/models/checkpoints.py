"""Where the encoder checkpoints that configs name are found.

A config names a checkpoint by path. Two placeholders keep shipped configs portable across machines:
``{data_root}`` is the resolved data root (Hu et al.'s released encoders sit in its ``pretrained/``),
and ``{shipped}`` is the folder of encoders gsrl itself pretrained and ships inside the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_ROOT_PLACEHOLDER", "SHIPPED_DIR", "SHIPPED_PLACEHOLDER", "resolve_checkpoint"]

DATA_ROOT_PLACEHOLDER = "{data_root}"
SHIPPED_PLACEHOLDER = "{shipped}"
SHIPPED_DIR = Path(__file__).parent / "pretrained"


def resolve_checkpoint(path: str, data_root: Path | None) -> Path:
    """The checkpoint file a configured path names, with its placeholders filled in.

    Raises ``FileNotFoundError`` naming both the configured and the resolved path, so a typo in a
    config is not mistaken for a missing download.
    """
    if DATA_ROOT_PLACEHOLDER in path and data_root is None:
        raise ValueError(f"checkpoint path {path!r} uses {DATA_ROOT_PLACEHOLDER} but no data root is known")
    resolved = path.replace(SHIPPED_PLACEHOLDER, str(SHIPPED_DIR))
    if data_root is not None:
        resolved = resolved.replace(DATA_ROOT_PLACEHOLDER, str(data_root))
    checkpoint = Path(resolved).expanduser()
    if not checkpoint.is_file():
        shown = path if str(checkpoint) == path else f"{path} (= {checkpoint})"
        raise FileNotFoundError(f"encoder checkpoint {shown} does not exist")
    return checkpoint

