"""GAE/VGAE link prediction on node-attributed graphs (Kipf & Welling 2016); gsrl.jobs.gae runs its jobs."""
