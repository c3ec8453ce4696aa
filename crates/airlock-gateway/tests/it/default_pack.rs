//! Every entry of the Azure default masking pack, against an answer shaped
//! like the real one (from the Azure REST API reference): the secrets are
//! replaced, the rest is left as it was.

#![allow(clippy::unwrap_used)]

use airlock_azure::{SECRET_RESPONSE_FALLBACKS, SECRET_RESPONSES};
use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskContext, Masker, TokenKey};
use serde_json::{Value, json};

const SCOPE: &str = "/subscriptions/s1/resourceGroups/rg/providers/X.Y/z/n";

struct Case {
    operation: &'static str,
    plane: Plane,
    body: Value,
    secrets: &'static [&'static str],
    kept: &'static [&'static str],
}

fn case(
    operation: &'static str,
    body: Value,
    secrets: &'static [&'static str],
    kept: &'static [&'static str],
) -> Case {
    Case {
        operation,
        plane: Plane::Management,
        body,
        secrets,
        kept,
    }
}

fn cases() -> Vec<Case> {
    let key88 =
        "c2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTE=";
    vec![
        // Get User Delegation Key (Storage REST reference): the key's `Value`
        // signs SAS tokens.
        Case {
            operation: "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
            plane: Plane::Data,
            body: Value::String(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>5bc6a5b2-0000-0000-0000-000000000000</SignedOid><SignedTid>72f988bf-86f1-41af-91ab-2d7cd011db47</SignedTid><SignedStart>2026-12-03T00:00:00Z</SignedStart><SignedExpiry>2026-12-04T00:00:00Z</SignedExpiry><SignedService>b</SignedService><SignedVersion>2023-11-03</SignedVersion><Value>Cbyl4qzyRGJgsEXryJ7Pn1u/tKlrDj/UnXheMFeD2cE=</Value></UserDelegationKey>"
                    .into(),
            ),
            secrets: &["Cbyl4qzyRGJgsEXryJ7Pn1u/tKlrDj/UnXheMFeD2cE="],
            kept: &["<SignedService>b</SignedService>", "2026-12-04T00:00:00Z"],
        },
        Case {
            operation: "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            plane: Plane::Data,
            body: json!({"value": "kv-secret-value-1", "id": "https://kv1.vault.azure.net/secrets/db/4387e9f3d6e14c459867679a90fd0f79",
                          "attributes": {"enabled": true, "created": 1_493_938_410, "recoveryLevel": "Recoverable+Purgeable"}}),
            secrets: &["kv-secret-value-1"],
            kept: &[
                "https://kv1.vault.azure.net/secrets/db/4387e9f3d6e14c459867679a90fd0f79",
                "Recoverable+Purgeable",
            ],
        },
        // The review's finding: `GET /secrets` had every `id` and
        // `recoveryLevel` masked (the list's `value` array matched `$.value`),
        // which breaks clients that follow `id`.
        Case {
            operation: "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            plane: Plane::Data,
            body: json!({"value": [
                            {"id": "https://kv1.vault.azure.net/secrets/db",
                             "attributes": {"enabled": true, "recoveryLevel": "Recoverable+Purgeable"}},
                            {"id": "https://kv1.vault.azure.net/secrets/api", "value": "a-value-in-a-list",
                             "attributes": {"enabled": true, "recoveryLevel": "Recoverable+Purgeable"}}],
                          "nextLink": null}),
            secrets: &["a-value-in-a-list"],
            kept: &[
                "https://kv1.vault.azure.net/secrets/db",
                "https://kv1.vault.azure.net/secrets/api",
                "Recoverable+Purgeable",
            ],
        },
        Case {
            operation: "Microsoft.KeyVault/vaults/secrets/backup/action",
            plane: Plane::Data,
            body: json!({"value": "JkF6dXJlS2V5VmF1bHRLZXlCYWNrdXBWMS5taWNyb3NvZnQuY29t-backup-blob"}),
            secrets: &["JkF6dXJlS2V5VmF1bHRLZXlCYWNrdXBWMS5taWNyb3NvZnQuY29t-backup-blob"],
            kept: &[],
        },
        Case {
            operation: "Microsoft.KeyVault/vaults/keys/decrypt/action",
            plane: Plane::Data,
            body: json!({"kid": "https://kv1.vault.azure.net/keys/k1/78deebed173b48e48f55abf87ed4cf71", "value": "plaintext-5ka5IVsnGrzufA"}),
            secrets: &["plaintext-5ka5IVsnGrzufA"],
            kept: &["https://kv1.vault.azure.net/keys/k1/78deebed173b48e48f55abf87ed4cf71"],
        },
        case(
            "Microsoft.Storage/storageAccounts/listKeys/action",
            json!({"keys": [{"creationTime": "2021-02-01T00:00:00Z", "keyName": "key1", "permissions": "FULL", "value": key88},
                            {"creationTime": "2021-02-01T00:00:00Z", "keyName": "key2", "permissions": "FULL", "value": "second-storage-key"}]}),
            &[
                "c2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTE=",
                "second-storage-key",
            ],
            &["key1", "FULL", "2021-02-01T00:00:00Z"],
        ),
        case(
            "Microsoft.Storage/storageAccounts/ListAccountSas/action",
            json!({"accountSasToken": "sv=2015-04-05&ss=b&srt=sco&sp=r&st=2017-05-24T10:42:03Z&se=2017-05-24T11:42:03Z&spr=https&sig=Z%2FRHIX5Xcg0Mq2rqI3OlWTjEg2tYkboXr1P9ZUXDtkk%3D"}),
            &["Z%2FRHIX5Xcg0Mq2rqI3OlWTjEg2tYkboXr1P9ZUXDtkk%3D"],
            &[],
        ),
        case(
            "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
            json!({"primaryMasterKey": "cosmos-pm", "secondaryMasterKey": "cosmos-sm", "primaryReadonlyMasterKey": "cosmos-pr", "secondaryReadonlyMasterKey": "cosmos-sr"}),
            &["cosmos-pm", "cosmos-sm", "cosmos-pr", "cosmos-sr"],
            &[],
        ),
        case(
            "Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action",
            json!({"connectionStrings": [{"connectionString": "AccountEndpoint=https://db1.documents.azure.com:443/;AccountKey=cosmos-conn-key==;",
                                          "description": "Primary SQL Connection String", "keyKind": "Primary", "type": "Sql"}]}),
            &["cosmos-conn-key=="],
            &["Primary SQL Connection String", "Sql"],
        ),
        case(
            "Microsoft.Cache/redis/listKeys/action",
            json!({"primaryKey": "redis-p", "secondaryKey": "redis-s"}),
            &["redis-p", "redis-s"],
            &[],
        ),
        case(
            "Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action",
            json!({"primaryConnectionString": "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=sb-key-1=",
                   "secondaryConnectionString": "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=sb-key-2=",
                   "primaryKey": "sb-key-1=", "secondaryKey": "sb-key-2=", "keyName": "RootManageSharedAccessKey"}),
            &["sb-key-1=", "sb-key-2="],
            &["RootManageSharedAccessKey"],
        ),
        case(
            "Microsoft.EventHub/namespaces/eventhubs/authorizationRules/listKeys/action",
            json!({"primaryConnectionString": "Endpoint=sb://eh.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=eh-key=;EntityPath=h1",
                   "primaryKey": "eh-key=", "secondaryKey": "eh-key-2=", "keyName": "r"}),
            &["eh-key=", "eh-key-2="],
            &[],
        ),
        case(
            "Microsoft.CognitiveServices/accounts/listKeys/action",
            json!({"key1": "openai-key-1", "key2": "openai-key-2"}),
            &["openai-key-1", "openai-key-2"],
            &[],
        ),
        case(
            "Microsoft.ContainerRegistry/registries/listCredentials/action",
            json!({"username": "acr1", "passwords": [{"name": "password", "value": "acr-pw-1"}, {"name": "password2", "value": "acr-pw-2"}]}),
            &["acr-pw-1", "acr-pw-2"],
            &["acr1", "password2"],
        ),
        case(
            "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
            json!({"kubeconfigs": [{"name": "clusterAdmin", "value": "YXBpVmVyc2lvbjogdjEKY2x1c3RlcnM6IGFkbWluLWt1YmVjb25maWc="}]}),
            &["YXBpVmVyc2lvbjogdjEKY2x1c3RlcnM6IGFkbWluLWt1YmVjb25maWc="],
            &["clusterAdmin"],
        ),
        case(
            "Microsoft.Web/sites/config/list/action",
            json!({"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/app1/config/appsettings", "name": "appsettings",
                   "type": "Microsoft.Web/sites/config", "properties": {"DB_PASSWORD": "app-setting-secret", "FEATURE_FLAG": "app-setting-2"}}),
            &["app-setting-secret", "app-setting-2"],
            &["appsettings", "Microsoft.Web/sites/config", "DB_PASSWORD"],
        ),
        case(
            "Microsoft.Web/sites/config/list/action",
            json!({"name": "publishingcredentials", "properties": {"publishingPassword": "publish-pw",
                   "scmUri": "https://$app1:publish-pw@app1.scm.azurewebsites.net"}}),
            &["publish-pw"],
            &["publishingcredentials"],
        ),
        case(
            "Microsoft.Web/sites/host/listkeys/action",
            json!({"masterKey": "fn-master", "functionKeys": {"default": "fn-default"}, "systemKeys": {"durabletask_extension": "fn-system"}}),
            &["fn-master", "fn-default", "fn-system"],
            &["durabletask_extension"],
        ),
        case(
            "Microsoft.Batch/batchAccounts/listKeys/action",
            json!({"accountName": "b1", "primary": "batch-p", "secondary": "batch-s"}),
            &["batch-p", "batch-s"],
            &["b1"],
        ),
        case(
            "Microsoft.Search/searchServices/listAdminKeys/action",
            json!({"primaryKey": "search-p", "secondaryKey": "search-s"}),
            &["search-p", "search-s"],
            &[],
        ),
        case(
            "Microsoft.Search/searchServices/listQueryKeys/action",
            json!({"value": [{"name": "q1", "key": "search-query-key"}]}),
            &["search-query-key"],
            &["q1"],
        ),
        case(
            "Microsoft.SignalRService/SignalR/listKeys/action",
            json!({"primaryKey": "signalr-p", "secondaryKey": "signalr-s",
                   "primaryConnectionString": "Endpoint=https://x.service.signalr.net;AccessKey=signalr-p;Version=1.0;"}),
            &["signalr-p", "signalr-s"],
            &[],
        ),
        case(
            "Microsoft.AppConfiguration/configurationStores/ListKeys/action",
            json!({"value": [{"id": "k1", "name": "Primary", "value": "appconfig-secret",
                              "connectionString": "Endpoint=https://x.azconfig.io;Id=k1;Secret=appconfig-secret", "readOnly": false}]}),
            &["appconfig-secret"],
            &["Primary"],
        ),
        case(
            "Microsoft.Devices/IotHubs/listkeys/action",
            json!({"value": [{"keyName": "iothubowner", "primaryKey": "iot-p", "secondaryKey": "iot-s", "rights": "RegistryWrite"}]}),
            &["iot-p", "iot-s"],
            &["iothubowner", "RegistryWrite"],
        ),
        case(
            "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
            json!({"primarySharedKey": "la-p", "secondarySharedKey": "la-s"}),
            &["la-p", "la-s"],
            &[],
        ),
        case(
            "Microsoft.Resources/deployments/read",
            json!({"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Resources/deployments/d1", "name": "d1",
                   "properties": {"provisioningState": "Succeeded", "outputs": {"storageKey": {"type": "String", "value": "deployment-output-key"}}}}),
            &["deployment-output-key"],
            &["Succeeded", "storageKey"],
        ),
        // Named like a secret-returning action, where Airlock does not know
        // where the secret is: every string, plain-text secrets too.
        case(
            "Microsoft.Contoso/widgets/listSecrets/action",
            json!({"connection": "Server=tcp:x.database.windows.net;User ID=app;Password=fallback-pw;"}),
            &["Server=tcp:x.database.windows.net;User ID=app;Password=fallback-pw;"],
            &["\"connection\""],
        ),
        case(
            "Microsoft.App/containerApps/listSecrets/action",
            json!({"value": [{"name": "db-password", "value": "Tr0ub4dor&3"}]}),
            &["Tr0ub4dor&3"],
            &["\"value\"", "\"name\""],
        ),
        case(
            "Microsoft.Contoso/widgets/regenerateAccessKey/action",
            json!({"connectionString": "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=regen-key=;"}),
            &["regen-key="],
            &["\"connectionString\""],
        ),
        Case {
            operation: "Microsoft.KeyVault/vaults/certificates/backup/action",
            plane: Plane::Data,
            body: json!({"value": "JkF6dXJlS2V5VmF1bHRDZXJ0aWZpY2F0ZUJhY2t1cFYxLm1pY3Jvc29mdC5jb20"}),
            secrets: &["JkF6dXJlS2V5VmF1bHRDZXJ0aWZpY2F0ZUJhY2t1cFYxLm1pY3Jvc29mdC5jb20"],
            kept: &[],
        },
        Case {
            operation: "Microsoft.Web/sites/publishxml/action",
            plane: Plane::Management,
            body: Value::String(PUBLISH_PROFILE.into()),
            secrets: &["publish-profile-pw", "sql-conn-pw"],
            kept: &["userName=\"$app1\"", "publishUrl=\"app1.scm.azurewebsites.net:443\""],
        },
        case(
            "Microsoft.Web/sites/slots/functions/listkeys/action",
            json!({"default": "fn-slot-default"}),
            &["fn-slot-default"],
            &[],
        ),
        case(
            "Microsoft.ContainerRegistry/registries/generateCredentials/action",
            json!({"username": "token1", "passwords": [{"name": "password1", "value": "acr-token-pw", "creationTime": "2026-12-05T00:00:00Z"}]}),
            &["acr-token-pw"],
            &["token1", "password1"],
        ),
        // A long-running `listKeys`-like action's result, read at its
        // `Location`: what the detectors find is masked.
        case(
            "Microsoft.Storage/locations/asyncoperations/read",
            json!({"status": "Succeeded", "properties": {"connectionString": "DefaultEndpointsProtocol=https;AccountName=sa1;AccountKey=lro-result-key==;EndpointSuffix=core.windows.net"}}),
            &["lro-result-key=="],
            &["Succeeded", "AccountName=sa1"],
        ),
    ]
}

/// A Web App's publishing profile as `publishxml` answers it (XML, the
/// password and connection strings in attributes).
const PUBLISH_PROFILE: &str = "<publishData><publishProfile profileName=\"app1 - Web Deploy\" publishMethod=\"MSDeploy\" publishUrl=\"app1.scm.azurewebsites.net:443\" msdeploySite=\"app1\" userName=\"$app1\" userPWD=\"publish-profile-pw\" destinationAppUrl=\"https://app1.azurewebsites.net\" SQLServerDBConnectionString=\"Server=tcp:db1.database.windows.net;User ID=app;Password=sql-conn-pw;\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"https://portal.azure.com\" webSystem=\"WebSites\"><databases /></publishProfile></publishData>";

#[test]
fn every_default_pack_entry_masks_a_real_shaped_answer() {
    let masker = JsonMasker::builder(TokenKey::generate().unwrap())
        .rules(airlock_gateway::default_rules().unwrap())
        .detectors(true)
        .build();
    let mut covered = std::collections::HashSet::new();
    for case in cases() {
        let operation = Operation::new(case.operation, case.plane, ResourceScope::new(SCOPE));
        assert!(
            masker.must_mask(&operation),
            "{} must be masked",
            case.operation
        );
        // Storage's data plane answers in XML: a string body is sent as it is.
        let (body, content_type) = match &case.body {
            Value::String(xml) => (xml.clone().into_bytes(), "application/xml"),
            json => (
                serde_json::to_vec(json).unwrap(),
                "application/json; charset=utf-8",
            ),
        };
        let outcome = masker
            .mask(
                &MaskContext::new(&operation).content_type(Some(content_type)),
                &body,
            )
            .unwrap();
        let masked = String::from_utf8(outcome.body.clone().unwrap().to_vec()).unwrap();
        if !case.body.is_string() {
            let _: Value = serde_json::from_str(&masked).unwrap();
        }
        for secret in case.secrets {
            assert!(
                !masked.contains(secret),
                "{}: {secret} survived in {masked}",
                case.operation
            );
        }
        for kept in case.kept {
            assert!(
                masked.contains(kept),
                "{}: {kept} was lost from {masked}",
                case.operation
            );
        }
        assert!(
            outcome.count as usize >= case.secrets.len(),
            "{}: {outcome:?}",
            case.operation
        );
        assert!(masked.contains("***MASKED"), "{masked}");
        if let Some(entry) = SECRET_RESPONSES
            .iter()
            .chain(SECRET_RESPONSE_FALLBACKS)
            .find(|e| {
                e.operations.iter().any(|p| {
                    airlock_core::OperationPattern::parse(p)
                        .unwrap()
                        .matches(case.operation)
                })
            })
        {
            covered.insert(entry.service);
        }
    }
    let missing: Vec<_> = SECRET_RESPONSES
        .iter()
        .chain(SECRET_RESPONSE_FALLBACKS)
        .map(|e| e.service)
        .filter(|s| !covered.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "entries without a test case: {missing:?}"
    );
}

/// The publishing profile's attributes are the rule's, not the detectors':
/// masked with tokens even where the detectors are turned off.
#[test]
fn a_publishing_profile_is_masked_without_detectors() {
    let masker = JsonMasker::builder(TokenKey::generate().unwrap())
        .rules(airlock_gateway::default_rules().unwrap())
        .detectors(false)
        .build();
    let operation = Operation::new(
        "Microsoft.Web/sites/slots/publishxml/action",
        Plane::Management,
        ResourceScope::new(SCOPE),
    );
    let outcome = masker
        .mask(
            &MaskContext::new(&operation).content_type(Some("application/xml")),
            PUBLISH_PROFILE.as_bytes(),
        )
        .unwrap();
    let masked = String::from_utf8(outcome.body.unwrap().to_vec()).unwrap();
    assert!(
        !masked.contains("publish-profile-pw") && !masked.contains("sql-conn-pw"),
        "{masked}"
    );
    assert!(masked.contains("userPWD=\"***MASKED:"), "{masked}");
    assert_eq!(outcome.paths, ["@userPWD", "@SQLServerDBConnectionString"]);
}

#[test]
fn ordinary_answers_are_not_rules_business() {
    let masker = JsonMasker::builder(TokenKey::generate().unwrap())
        .rules(airlock_gateway::default_rules().unwrap())
        .build();
    let read = Operation::new(
        "Microsoft.Storage/storageAccounts/read",
        Plane::Management,
        ResourceScope::new(SCOPE),
    );
    assert!(!masker.must_mask(&read));
}
