//! [`AzureEndpoint`]: which Azure API a request is addressed to.

/// The Azure API a request goes to, as the gateway's host allowlist resolved it.
///
/// The endpoint decides the vocabulary: ARM paths name management operations
/// (`Microsoft.Compute/virtualMachines/delete`), Key Vault paths name data
/// actions (`Microsoft.KeyVault/vaults/secrets/getSecret/action`), Blob
/// service paths name Storage data actions
/// (`Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AzureEndpoint {
    /// Azure Resource Manager (`management.azure.com` or a sovereign cloud's).
    Arm,
    /// A Key Vault's data plane (`{vault}.vault.azure.net`).
    KeyVault {
        /// The vault's name: the first label of its host.
        vault: String,
    },
    /// A storage account's Blob service (`{account}.blob.core.windows.net`).
    Blob {
        /// The account's name: the first label of its host.
        account: String,
    },
}
