"""The molecular VGAE: corpora, model, decoders, latent optimisation, pictures and its generation report."""
