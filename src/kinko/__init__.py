"""kinko: a self-hosted secrets vault for containers and Kubernetes, and a scanner for leaked secrets."""
