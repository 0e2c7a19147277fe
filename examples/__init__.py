"""Worked examples of gsrl's extension points (docs/extending.md); importable from the repository root."""
