//! The Azure responses that carry secrets, and where in them the secrets are:
//! the default masking pack. Plain data: the gateway turns each entry into a
//! masking rule (operations × JSON paths); the masking layer does the rest.
//!
//! A JSON path that selects an object or array stands for every string in it.

/// One kind of secret-bearing response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretResponse {
    /// What it is, for documentation and tests.
    pub service: &'static str,
    /// RBAC operation patterns (role-definition wildcards).
    pub operations: &'static [&'static str],
    /// Where the secrets are (JSONPath subset: `.field`, `[*]`, `..field`, `.*`).
    /// Empty: no known field, but the response must be parsed and scanned
    /// by the detectors, and is withheld if it cannot be.
    pub json_paths: &'static [&'static str],
    /// XML elements whose text is secret, for answers in XML (Storage's data
    /// plane); `@name` for an attribute whose value is (a publishing profile).
    pub xml_elements: &'static [&'static str],
}

/// The default pack, on by default.
pub const SECRET_RESPONSES: &[SecretResponse] = &[
    SecretResponse {
        service: "Key Vault secret values (get, recover, backup, set)",
        operations: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/recover/action",
            "Microsoft.KeyVault/vaults/secrets/backup/action",
            "Microsoft.KeyVault/vaults/secrets/setSecret/action",
        ],
        json_paths: &["$.value"],
        xml_elements: &[],
    },
    // Lists (`GET /secrets`, `…/versions`) carry metadata only: their
    // `value` is the array of items, whose `id` and attributes clients
    // follow and read. Only a secret value inside an item would be masked.
    SecretResponse {
        service: "Key Vault secret lists (metadata; an item's value, should one appear)",
        operations: &["Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
        json_paths: &["$.value[*].value"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Key Vault key operations that return plaintext (decrypt, unwrap)",
        operations: &[
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "Microsoft.KeyVault/vaults/keys/backup/action",
        ],
        json_paths: &["$.value"],
        xml_elements: &[],
    },
    // A certificate's backup carries its private key.
    SecretResponse {
        service: "Key Vault certificate backups",
        operations: &["Microsoft.KeyVault/vaults/certificates/backup/action"],
        json_paths: &["$.value"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Storage account keys",
        operations: &[
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/regenerateKey/action",
        ],
        json_paths: &["$.keys[*].value"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Storage SAS tokens",
        operations: &[
            "Microsoft.Storage/storageAccounts/ListAccountSas/action",
            "Microsoft.Storage/storageAccounts/ListServiceSas/action",
        ],
        json_paths: &["$.accountSasToken", "$.serviceSasToken"],
        xml_elements: &[],
    },
    // The key signs user-delegation SAS tokens: an agent holding it could
    // reach the account around the gateway. Storage answers in XML.
    SecretResponse {
        service: "Storage user delegation keys",
        operations: &[
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        json_paths: &[],
        xml_elements: &["Value"],
    },
    SecretResponse {
        service: "Cosmos DB keys",
        operations: &[
            "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
            "Microsoft.DocumentDB/databaseAccounts/readonlykeys/action",
            "Microsoft.DocumentDB/databaseAccounts/readonlykeys/read",
        ],
        json_paths: &[
            "$.primaryMasterKey",
            "$.secondaryMasterKey",
            "$.primaryReadonlyMasterKey",
            "$.secondaryReadonlyMasterKey",
        ],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Cosmos DB connection strings",
        operations: &["Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action"],
        json_paths: &["$.connectionStrings[*].connectionString"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Azure Cache for Redis keys",
        operations: &[
            "Microsoft.Cache/redis/listKeys/action",
            "Microsoft.Cache/redis/regenerateKey/action",
        ],
        json_paths: &["$.primaryKey", "$.secondaryKey"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Service Bus, Event Hubs and Relay keys and connection strings",
        operations: &[
            "Microsoft.ServiceBus/*/listKeys/action",
            "Microsoft.ServiceBus/*/regenerateKeys/action",
            "Microsoft.EventHub/*/listKeys/action",
            "Microsoft.EventHub/*/regenerateKeys/action",
            "Microsoft.Relay/*/listKeys/action",
            "Microsoft.Relay/*/regenerateKeys/action",
        ],
        json_paths: &[
            "$.primaryKey",
            "$.secondaryKey",
            "$.primaryConnectionString",
            "$.secondaryConnectionString",
            "$.aliasPrimaryConnectionString",
            "$.aliasSecondaryConnectionString",
        ],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Cognitive Services and Azure OpenAI keys",
        operations: &[
            "Microsoft.CognitiveServices/accounts/listKeys/action",
            "Microsoft.CognitiveServices/accounts/regenerateKey/action",
        ],
        json_paths: &["$.key1", "$.key2"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Container Registry credentials",
        operations: &[
            "Microsoft.ContainerRegistry/registries/listCredentials/action",
            "Microsoft.ContainerRegistry/registries/regenerateCredential/action",
            "Microsoft.ContainerRegistry/registries/generateCredentials/action",
        ],
        json_paths: &["$.passwords[*].value"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "AKS kubeconfigs (admin, user, monitoring)",
        operations: &["Microsoft.ContainerService/managedClusters/listCluster*Credential/action"],
        json_paths: &["$.kubeconfigs[*].value"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Web Apps and Functions: publishing credentials, app settings, connection strings, auth settings",
        operations: &[
            "Microsoft.Web/sites/config/list/action",
            "Microsoft.Web/sites/slots/config/list/action",
        ],
        json_paths: &["$.properties"],
        xml_elements: &[],
    },
    // `publishxml` answers a publishing profile in XML: the deployment
    // password is an attribute, and the database connection strings are
    // too when the app has them.
    SecretResponse {
        service: "Web Apps and Functions publishing profiles (XML)",
        operations: &[
            "Microsoft.Web/sites/publishxml/action",
            "Microsoft.Web/sites/slots/publishxml/action",
        ],
        json_paths: &[],
        xml_elements: &[
            "@userPWD",
            "@mySQLDBConnectionString",
            "@SQLServerDBConnectionString",
        ],
    },
    SecretResponse {
        service: "Functions host and function keys",
        operations: &[
            "Microsoft.Web/sites/host/listkeys/action",
            "Microsoft.Web/sites/slots/host/listkeys/action",
            "Microsoft.Web/sites/functions/listkeys/action",
            "Microsoft.Web/sites/functions/listsecrets/action",
            "Microsoft.Web/sites/slots/functions/listkeys/action",
            "Microsoft.Web/sites/slots/functions/listsecrets/action",
            "Microsoft.Web/sites/host/listsyncstatus/action",
        ],
        json_paths: &["$.masterKey", "$.functionKeys", "$.systemKeys", "$.*"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Batch account keys",
        operations: &[
            "Microsoft.Batch/batchAccounts/listKeys/action",
            "Microsoft.Batch/batchAccounts/regenerateKeys/action",
        ],
        json_paths: &["$.primary", "$.secondary"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Cognitive Search admin and query keys",
        operations: &[
            "Microsoft.Search/searchServices/listAdminKeys/action",
            "Microsoft.Search/searchServices/regenerateAdminKey/action",
            "Microsoft.Search/searchServices/listQueryKeys/action",
        ],
        json_paths: &["$.primaryKey", "$.secondaryKey", "$.value[*].key"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "SignalR, Web PubSub and Maps keys",
        operations: &[
            "Microsoft.SignalRService/*/listKeys/action",
            "Microsoft.SignalRService/*/regenerateKey/action",
            "Microsoft.Maps/accounts/listKeys/action",
        ],
        json_paths: &[
            "$.primaryKey",
            "$.secondaryKey",
            "$.primaryConnectionString",
            "$.secondaryConnectionString",
        ],
        xml_elements: &[],
    },
    SecretResponse {
        service: "App Configuration access keys",
        operations: &["Microsoft.AppConfiguration/configurationStores/ListKeys/action"],
        json_paths: &["$.value[*].value", "$.value[*].connectionString"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "IoT Hub shared access keys",
        operations: &[
            "Microsoft.Devices/IotHubs/listkeys/action",
            "Microsoft.Devices/IotHubs/IotHubKeys/listkeys/action",
        ],
        json_paths: &[
            "$.value[*].primaryKey",
            "$.value[*].secondaryKey",
            "$.primaryKey",
            "$.secondaryKey",
        ],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Log Analytics workspace shared keys",
        operations: &["Microsoft.OperationalInsights/workspaces/sharedKeys/action"],
        json_paths: &["$.primarySharedKey", "$.secondarySharedKey"],
        xml_elements: &[],
    },
    SecretResponse {
        service: "Deployment outputs (a template may return listKeys() results)",
        operations: &["Microsoft.Resources/deployments/read"],
        json_paths: &[
            "$.properties.outputs.*.value",
            "$.value[*].properties.outputs.*.value",
        ],
        xml_elements: &[],
    },
    // A long-running operation's final answer arrives at its poll URL
    // (`Location`), classified by that URL, not by the action that started
    // it: an action's secrets can arrive there.
    SecretResponse {
        service: "Results of long-running operations (detectors only)",
        operations: &[
            "*/operationResults/read",
            "*/asyncOperations/read",
            "*/operationStatuses/read",
        ],
        json_paths: &[],
        xml_elements: &[],
    },
];

/// The pack's fallbacks: each applies only to an operation no entry of
/// [`SECRET_RESPONSES`] names (a masking rule's `fallback`), so a known
/// answer keeps what its entry does not mask.
pub const SECRET_RESPONSE_FALLBACKS: &[SecretResponse] = &[
    // Named as AZURE.md §4 names them, whatever the verb before the noun
    // (`generateCredentials`, `getSecrets`), and every `regenerate*`, which
    // answers with the new key in most providers. Where in the answer the
    // secret is, Airlock does not know (a Container App's `listSecrets`
    // answers `{"value": [{"name", "value"}]}` in plain text, which no
    // detector recognises): every string is masked.
    SecretResponse {
        service: "Anything named like a secret-returning action (every string)",
        operations: &[
            "*/list*Keys/action",
            "*Secrets/action",
            "*Credential/action",
            "*Credentials/action",
            "*Sas/action",
            "*ConnectionStrings/action",
            "*/regenerate*/action",
            "*/config/*/list/action",
        ],
        json_paths: &["$"],
        xml_elements: &[],
    },
];
