"""Parts of the PyTorch converter (:mod:`baton.converters.torch`)."""
