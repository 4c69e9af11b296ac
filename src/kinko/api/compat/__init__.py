"""APIs that speak other products' protocols over the same vault service (docs/compat.md)."""
