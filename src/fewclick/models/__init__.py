"""Network modules only (``nn.Module``s): no numpy, files or HTTP here."""
