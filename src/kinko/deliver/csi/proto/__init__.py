"""Generated gRPC stubs for the Secrets Store CSI provider API (v1alpha1); see service.proto to regenerate."""
