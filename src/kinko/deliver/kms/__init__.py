"""The Kubernetes KMS v2 plugin: v2.KeyManagementService over a Unix socket, keys kept in kinko."""
