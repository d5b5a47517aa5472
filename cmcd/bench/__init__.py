"""Benchmarks (`cmcd bench ...`): many runs, tables, verdicts and figures."""
