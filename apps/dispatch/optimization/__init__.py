"""Route optimization: problem (dataclasses) -> build (pure) -> solve -> plan (pure).

Travel times come from a provider (``travel.py``) shared with the ETA engine.
"""
