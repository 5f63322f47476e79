"""Serving a bundle over the Open Inference Protocol (v2) REST API: ``baton serve``.

Needs the ``serve`` extra (Starlette and uvicorn): ``pip install 'baton[serve]'``. Nothing
here is imported by ``import baton``.
"""

from __future__ import annotations

from baton.serving.server import ModelServer, make_app, serve

__all__ = ["ModelServer", "make_app", "serve"]
