"""baton's runtime: a converted bundle as a validated onnxruntime session.

Depends on numpy and onnxruntime only; never imports torch, scikit-learn or pandas.
"""

from __future__ import annotations

from baton.runtime._files import BundleFiles, FileCheck
from baton.runtime.providers import available_providers
from baton.runtime.session import Session

__all__ = ["BundleFiles", "FileCheck", "Session", "available_providers"]
