"""Stage types: every module here that defines ``STAGE = StageSpec(...)`` is picked up by the registry."""
