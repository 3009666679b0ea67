"""Adapters: third-party optimizers behind torch.optim's API, for ``--optimizer SPEC=module:Class``."""
