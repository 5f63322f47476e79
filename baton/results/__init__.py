"""The results of baton's checks as data: typed, serialisable, and truthy when they pass.

A leaf of the package: it imports nothing of baton but the other leaves (errors, schema,
tolerance), so the runtime, the bundle, converters and parity can all hand these around.
"""
