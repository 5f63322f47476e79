"""``FileCheck``: one file of a bundle against the sha256 its manifest lists."""

from __future__ import annotations

from typing import Any


class FileCheck:
    __slots__ = ("name", "expected", "found")

    def __init__(self, name: str, expected: str | None, found: str | None) -> None:
        self.name = name
        #: the sha256 the manifest lists; None for a file baton needs that it does not list
        self.expected = expected
        #: the file's sha256; None when it is missing
        self.found = found

    @property
    def ok(self) -> bool:
        return self.expected is not None and self.found == self.expected

    def describe(self) -> str:
        """What is wrong with the file, in a few words ('' when nothing is)."""
        if self.ok:
            return ""
        if self.expected is None:
            return "NOT LISTED in baton.json" + ("" if self.found is not None else
                                                 ", and missing")
        if self.found is None:
            return "MISSING"
        return f"DIFFERS (expected sha256 {self.expected[:12]}…, found {self.found[:12]}…)"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "expected": self.expected, "found": self.found, "ok": self.ok}
