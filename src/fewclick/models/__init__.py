"""Network modules (``nn.Module``s), each with its own checkpoint ``save`` / ``load`` and
input normalisation (:mod:`~fewclick.models.checkpoint` reads and writes the files); no
image decoding, dataset formats or HTTP here."""
