"""Generated gRPC stubs for the Kubernetes KMS v2 plugin API; see api.proto to regenerate."""
