"""The molecule-graph container every dataset, corpus and training loop shares.

``MoleculeGraphs`` keeps all molecules of a dataset in PyG's in-memory layout (one set of
concatenated tensors plus offsets), which is what the processed caches store and what
``collate_ids`` slices on every training step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.data.separate import separate


def _concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop."""
    exclusive_cumsum = np.cumsum(counts) - counts
    return np.arange(counts.sum(), dtype=np.int64) + np.repeat(starts - exclusive_cumsum, counts)


def _pointer(counts: np.ndarray) -> np.ndarray:
    """Offsets ``[0, c0, c0 + c1, ...]`` of consecutive blocks with the given sizes."""
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts, dtype=np.int64)])


class MoleculeGraphs(InMemoryDataset):
    """All molecule graphs of one dataset, collated once and cached on disk.

    Storage is PyG's in-memory layout: node and edge tensors of every molecule
    concatenated, ``edge_index`` kept local to each molecule, and ``slices`` giving
    where each molecule starts. ``graphs[i]`` is molecule ``i`` as a ``Data``.
    """

    def __init__(self, data: Data, slices: dict[str, Tensor]) -> None:
        super().__init__(root=None, log=False)
        self._data = data
        self.slices = slices
        # NumPy views of the same memory for collate_ids: NumPy's small-array index
        # arithmetic is single-threaded and cheap, while torch.repeat_interleave can
        # stall for milliseconds in its thread pool on a busy machine.
        self._arrays = {
            "x": data.x.numpy(),
            "edge_index": data.edge_index.numpy(),
            "edge_attr": data.edge_attr.numpy(),
            "node_ptr": slices["x"].numpy(),
            "edge_ptr": slices["edge_index"].numpy(),
        }

    @classmethod
    def from_tensors(
        cls, x: Tensor, edge_index: Tensor, edge_attr: Tensor, node_ptr: Tensor, edge_ptr: Tensor
    ) -> MoleculeGraphs:
        """Build from concatenated features and per-molecule start offsets."""
        data = Data(x=x, edge_index=edge_index, edge_attr=edge_attr)
        slices = {"x": node_ptr, "edge_index": edge_ptr, "edge_attr": edge_ptr}
        return cls(data, slices)

    @classmethod
    def from_arrays(
        cls, xs: Sequence[np.ndarray], edge_indices: Sequence[np.ndarray], edge_attrs: Sequence[np.ndarray]
    ) -> MoleculeGraphs:
        """Build from per-molecule feature arrays (what the featurizer returns); no molecules is fine."""
        return cls.from_tensors(
            x=torch.from_numpy(np.concatenate(xs or [np.zeros((0, 2), np.int64)])),
            edge_index=torch.from_numpy(np.concatenate(edge_indices or [np.zeros((2, 0), np.int64)], axis=1)),
            edge_attr=torch.from_numpy(np.concatenate(edge_attrs or [np.zeros((0, 2), np.int64)])),
            node_ptr=torch.from_numpy(_pointer(np.array([len(x) for x in xs], dtype=np.int64))),
            edge_ptr=torch.from_numpy(_pointer(np.array([e.shape[1] for e in edge_indices], dtype=np.int64))),
        )

    def get(self, idx: int) -> Data:
        """Molecule ``idx``, sliced out of the stored tensors each time. (``InMemoryDataset.get`` also keeps
        a copy of every molecule it returns, which grows by gigabytes over a pretraining epoch.)"""
        return separate(cls=Data, batch=self._data, idx=idx, slice_dict=self.slices, decrement=False)

    def to_tensors(self) -> dict[str, Tensor]:
        """The tensors :meth:`from_tensors` needs, e.g. to write a cache file."""
        return {
            "x": self._data.x,
            "edge_index": self._data.edge_index,
            "edge_attr": self._data.edge_attr,
            "node_ptr": self.slices["x"],
            "edge_ptr": self.slices["edge_index"],
        }

    def collate_ids(self, ids: Sequence[int] | np.ndarray | Tensor) -> Batch:
        """Batch the given molecules, equal to ``Batch.from_data_list([self[i] for i in ids])``.

        This runs on every training step, so it slices the stored arrays directly
        instead of materialising one ``Data`` per molecule. Ids may repeat.
        """
        ids = self._molecule_ids(ids)
        arrays = self._arrays
        node_start, edge_start = arrays["node_ptr"][ids], arrays["edge_ptr"][ids]
        node_count = arrays["node_ptr"][ids + 1] - node_start
        edge_count = arrays["edge_ptr"][ids + 1] - edge_start

        node_idx = _concat_ranges(node_start, node_count)
        edge_idx = _concat_ranges(edge_start, edge_count)
        batch_ptr = _pointer(node_count)
        edge_batch_ptr = _pointer(edge_count)
        node_offset = batch_ptr[:-1]
        # np.take is several times faster than fancy indexing on these 2-D arrays.
        edge_index = np.take(arrays["edge_index"], edge_idx, axis=1)
        edge_index += np.repeat(node_offset, edge_count)

        batch = Batch(
            x=torch.from_numpy(np.take(arrays["x"], node_idx, axis=0)),
            edge_index=torch.from_numpy(edge_index),
            edge_attr=torch.from_numpy(np.take(arrays["edge_attr"], edge_idx, axis=0)),
            batch=torch.from_numpy(np.repeat(np.arange(len(ids), dtype=np.int64), node_count)),
            ptr=torch.from_numpy(batch_ptr),
        )
        # Bookkeeping that lets Batch.to_data_list / index_select work as usual.
        edge_ptr_t = torch.from_numpy(edge_batch_ptr)
        zeros = torch.zeros(len(ids), dtype=torch.long)
        batch._num_graphs = len(ids)
        batch._slice_dict = {"x": batch.ptr, "edge_index": edge_ptr_t, "edge_attr": edge_ptr_t}
        batch._inc_dict = {"x": zeros, "edge_index": torch.from_numpy(node_offset), "edge_attr": zeros}
        return batch

    def _molecule_ids(self, ids: Sequence[int] | np.ndarray | Tensor) -> np.ndarray:
        """Ids as an int64 array into the full storage, bounds-checked."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"molecule ids must lie in [0, {len(self)}), got {ids.min()}..{ids.max()}")
        if self._indices is not None:  # a view made by dataset[...]: map to stored ids
            ids = np.asarray(self.indices(), dtype=np.int64)[ids]
        return ids
