"""Graph autoencoders, two unrelated products that share only the idea of an encoder and a decoder.

``gsrl.gae.link``: GAE/VGAE link prediction on node-attributed graphs (Cora, CiteSeer, Amazon), Kipf &
Welling 2016: the graph registry, leak-free edge splits, one job, the sweep of datasets × models × seeds
and the choice among sweeps on validation edges. ``gsrl.gae.molecular``: the molecular VGAE, which encodes
whole molecules into one latent vector each and decodes molecules from it: its corpora, model, decoders,
latent optimisation of QED, pictures and the generation report (gsrl.jobs.molecular_vgae trains it with Ray
Train).
"""
