"""Other vaults' wire protocols on kinko's server: HashiCorp Vault (KV v2, token, sys) and Azure Key Vault."""
