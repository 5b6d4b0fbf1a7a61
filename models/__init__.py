"""Models behind one interface: published equations and trained PyTorch artifacts."""
