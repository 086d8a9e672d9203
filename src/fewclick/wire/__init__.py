"""What the HTTP API answers, shared by the server and its client.

- :mod:`fewclick.wire.answers`: a pydantic model per answer of every JSON endpoint; the
  server declares them as its routes' ``response_model`` (so the OpenAPI schema says what
  comes back) and :mod:`fewclick.client` parses the answers with them.
- :mod:`fewclick.wire.codec`: the one conversion of fewclick's types to those answers:
  :class:`~fewclick.types.Detections` and masks to JSON lists and COCO RLE, and a project's
  class ids to the class positions its models count by, and back.

It sits below ``server`` and ``client`` (``docs/architecture.md``): both import it, and
neither may import the other.
"""
