"""fewclick: annotate images full of small objects with a few clicks.

Light modules (``fewclick.types``, ``fewclick.io``, ``fewclick.metrics``,
``fewclick.simulate``) import without torch; models and the server load it lazily.
"""

__version__ = "0.1.0"
