"""MLflow (runs, registry, aliases) and Chroma (vector memory) helpers."""
