"""Text classification: normalise, rules, prototypes, confidence gate, heads and LLM escalation."""
