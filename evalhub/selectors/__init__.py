"""Reads that take more than one line: querysets and plain values for views and commands."""
