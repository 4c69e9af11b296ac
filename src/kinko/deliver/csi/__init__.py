"""The Secrets Store CSI driver provider: gRPC service (provider.py), mount parameters (params.py), stubs (proto/)."""
