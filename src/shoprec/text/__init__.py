"""Text encoders (bundled multilingual language model by default) and CJK-aware tokenizers."""
