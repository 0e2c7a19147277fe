"""Downstream fine-tuning benchmark of Hu et al. 2020 (eight MoleculeNet datasets, scaffold split).

:func:`gsrl.finetune.train.finetune` is one (dataset, encoder, seed) run;
:func:`gsrl.finetune.benchmark.run_benchmark` runs a :class:`FinetuneConfig` grid on Ray and
writes the results and the table.
"""

from gsrl.finetune.config import EncoderSpec, FinetuneConfig

__all__ = ["EncoderSpec", "FinetuneConfig"]
