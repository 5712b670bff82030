"""Knowledge core: FAQ store, Chinese matcher, policy documents, query log and gaps report.

Imports nothing from `bot` or `handoff`.
"""
