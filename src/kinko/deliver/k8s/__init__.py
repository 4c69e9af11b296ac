"""`kinko k8s`: render SecretProviderClasses and Secrets, and import Secret manifests (importer, patch, secrets)."""
