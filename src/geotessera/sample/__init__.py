"""The deterministic synthetic Tessera sample store and its loopback S3 endpoint.

``build`` needs only the core install; ``serve`` needs the ``sample`` extra (moto).
"""
