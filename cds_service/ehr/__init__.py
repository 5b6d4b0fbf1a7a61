"""What an EHR does, shared by the simulator and the CLI: hook contexts, draft orders, prefetch from local data, signing, demo patients."""
