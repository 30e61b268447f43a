"""Text: normalisation, filters, language ID, the allowlist matcher."""
