"""Taste2Vec: one 128-d taste vector per coffee record, users as points in the same space, learned online.

Modules: `vocab` (flavour-wheel lexicon, Korean + English), `data` (the real CQI lots and their seeded
tasting notes), `config`, `encoders` + `model` (the towers), `records` (model-independent batches),
`profiles` (per-user / per-lot verdict memory), `runtime` (assembles catalogue, text vectors, model),
`feedback` (events, validation, dead letter, watermark), `replay` (reservoir buffer), `learner` (one
online update), `checkpoint`, `registry` (MLflow), `simulate` (seeded users with drifting tastes),
`evaluate` + `experiment` (prequential curves), `update` (the Ray Train job body), `recommend` (Chroma).
See docs/taste2vec.md.
"""
