"""fastText math classifiers: preprocessing (:mod:`.preprocess`), training with a model card (:mod:`.model`),
metrics and PR curves (:mod:`.metrics`), batched per-source scoring (:mod:`.score`) and iterative recall rounds
with domain expansion (:mod:`.recall`). Pure logic: no Ray, no executor."""
