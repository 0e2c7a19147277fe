"""Downstream fine-tuning benchmark of Hu et al. 2020 (eight MoleculeNet datasets, scaffold split).

:func:`gsrl.finetune.train.finetune` is one (dataset, encoder, seed) run;
:mod:`gsrl.finetune.benchmark` holds the grid's run directories, summary and table; the job
:func:`gsrl.jobs.finetune.run_benchmark` runs a :class:`FinetuneConfig` grid on Ray.
"""

from gsrl.finetune.config import EncoderSpec, FinetuneConfig

__all__ = ["EncoderSpec", "FinetuneConfig"]
