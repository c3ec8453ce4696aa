//! The default masking pack names the operations the classifier produces for
//! the real secret-returning requests.

#![allow(clippy::unwrap_used)]

use airlock_azure::{
    AzureEndpoint, ClassifyRequest, SECRET_RESPONSE_FALLBACKS, SECRET_RESPONSES, classify,
};
use airlock_core::OperationPattern;
use http::{HeaderMap, Method};

const RG: &str = "/subscriptions/s1/resourceGroups/rg";

fn operation(method: &Method, endpoint: &AzureEndpoint, path: &str, api: &str) -> String {
    classify(&ClassifyRequest {
        method,
        endpoint,
        path,
        query: Some(&format!("api-version={api}")),
        headers: &HeaderMap::new(),
        body: b"",
    })
    .unwrap()
    .name()
    .to_owned()
}

/// The entry that masks `name`'s answers: the first of the pack that names
/// it, else the first fallback.
fn pack_entry(name: &str) -> Option<&'static str> {
    SECRET_RESPONSES
        .iter()
        .chain(SECRET_RESPONSE_FALLBACKS)
        .find(|entry| {
            entry
                .operations
                .iter()
                .any(|p| OperationPattern::parse(p).unwrap().matches(name))
        })
        .map(|entry| entry.service)
}

#[test]
fn every_pattern_and_path_is_well_formed() {
    for entry in SECRET_RESPONSES.iter().chain(SECRET_RESPONSE_FALLBACKS) {
        for pattern in entry.operations {
            OperationPattern::parse(pattern).unwrap_or_else(|e| panic!("{}: {e}", entry.service));
        }
        for path in entry.json_paths {
            assert!(path.starts_with('$'), "{}: {path}", entry.service);
        }
    }
}

#[test]
fn real_secret_requests_are_in_the_pack() {
    let arm = AzureEndpoint::Arm;
    let vault = AzureEndpoint::KeyVault {
        vault: "kv1".into(),
    };
    let post = |path: &str| {
        operation(
            &Method::POST,
            &arm,
            &format!("{RG}/providers/{path}"),
            "2023-05-01",
        )
    };
    let cases = [
        (
            operation(&Method::GET, &vault, "/secrets/db-password", "7.4"),
            "Key Vault",
        ),
        (
            operation(
                &Method::GET,
                &vault,
                "/secrets/db-password/0123456789abcdef",
                "7.4",
            ),
            "Key Vault",
        ),
        (
            operation(&Method::POST, &vault, "/secrets/db-password/backup", "7.4"),
            "Key Vault",
        ),
        (
            operation(&Method::POST, &vault, "/keys/k1/0123/decrypt", "7.4"),
            "Key Vault key",
        ),
        (
            post("Microsoft.Storage/storageAccounts/sa1/listKeys"),
            "Storage account keys",
        ),
        (
            post("Microsoft.Storage/storageAccounts/sa1/regenerateKey"),
            "Storage account keys",
        ),
        (
            post("Microsoft.Storage/storageAccounts/sa1/ListAccountSas"),
            "Storage SAS",
        ),
        (
            post("Microsoft.DocumentDB/databaseAccounts/db1/listKeys"),
            "Cosmos DB keys",
        ),
        (
            post("Microsoft.DocumentDB/databaseAccounts/db1/listConnectionStrings"),
            "Cosmos DB connection",
        ),
        (
            post("Microsoft.Cache/redis/r1/listKeys"),
            "Azure Cache for Redis",
        ),
        (
            post(
                "Microsoft.ServiceBus/namespaces/ns1/authorizationRules/RootManageSharedAccessKey/listKeys",
            ),
            "Service Bus",
        ),
        (
            post("Microsoft.ServiceBus/namespaces/ns1/queues/q1/authorizationRules/r/listKeys"),
            "Service Bus",
        ),
        (
            post("Microsoft.EventHub/namespaces/ns1/eventhubs/h1/authorizationRules/r/listKeys"),
            "Service Bus",
        ),
        (
            post(
                "Microsoft.Relay/namespaces/ns1/hybridConnections/h/authorizationRules/r/listKeys",
            ),
            "Service Bus",
        ),
        (
            post("Microsoft.CognitiveServices/accounts/openai1/listKeys"),
            "Cognitive Services",
        ),
        (
            post("Microsoft.ContainerRegistry/registries/acr1/listCredentials"),
            "Container Registry",
        ),
        (
            post("Microsoft.ContainerService/managedClusters/aks1/listClusterAdminCredential"),
            "AKS",
        ),
        (
            post("Microsoft.ContainerService/managedClusters/aks1/listClusterUserCredential"),
            "AKS",
        ),
        (
            post("Microsoft.Web/sites/app1/config/publishingcredentials/list"),
            "Web Apps",
        ),
        (
            post("Microsoft.Web/sites/app1/config/appsettings/list"),
            "Web Apps",
        ),
        (
            post("Microsoft.Web/sites/app1/config/connectionstrings/list"),
            "Web Apps",
        ),
        (
            post("Microsoft.Web/sites/app1/slots/staging/config/appsettings/list"),
            "Web Apps",
        ),
        (
            post("Microsoft.Web/sites/app1/host/default/listkeys"),
            "Functions",
        ),
        (
            post("Microsoft.Web/sites/app1/functions/f1/listkeys"),
            "Functions",
        ),
        (post("Microsoft.Batch/batchAccounts/b1/listKeys"), "Batch"),
        (
            post("Microsoft.Search/searchServices/s1/listAdminKeys"),
            "Search",
        ),
        (
            post("Microsoft.OperationalInsights/workspaces/w1/sharedKeys"),
            "Log Analytics",
        ),
        (
            operation(
                &Method::GET,
                &arm,
                &format!("{RG}/providers/Microsoft.Resources/deployments/d1"),
                "2024-03-01",
            ),
            "Deployment outputs",
        ),
        (
            post("Microsoft.Foo/widgets/w1/listSecrets"),
            "Anything named",
        ),
        (
            post("Microsoft.Web/sites/app1/publishxml"),
            "publishing profiles",
        ),
        (
            post("Microsoft.Web/sites/app1/slots/staging/publishxml"),
            "publishing profiles",
        ),
        (
            post("Microsoft.Web/sites/app1/slots/staging/functions/f1/listkeys"),
            "Functions",
        ),
        (
            post("Microsoft.Web/sites/app1/slots/staging/functions/f1/listsecrets"),
            "Functions",
        ),
        (
            post("Microsoft.ContainerRegistry/registries/acr1/generateCredentials"),
            "Container Registry",
        ),
        // AZURE.md §4's fallback names, whatever the verb before them.
        (
            post("Microsoft.Foo/widgets/w1/getSecrets"),
            "Anything named",
        ),
        (
            post("Microsoft.Foo/widgets/w1/fetchCredential"),
            "Anything named",
        ),
        (
            post("Microsoft.Foo/widgets/w1/generateSas"),
            "Anything named",
        ),
        (
            post("Microsoft.Foo/widgets/w1/regenerateAccessKey"),
            "Anything named",
        ),
        // Where a long-running operation's final answer is read.
        (
            operation(
                &Method::GET,
                &arm,
                "/subscriptions/s1/providers/Microsoft.Storage/locations/westeurope/asyncoperations/0c5e",
                "2023-05-01",
            ),
            "long-running",
        ),
        (
            operation(
                &Method::GET,
                &arm,
                "/subscriptions/s1/providers/Microsoft.Cache/locations/westeurope/operationResults/7d1e",
                "2023-05-01",
            ),
            "long-running",
        ),
        (
            operation(
                &Method::GET,
                &arm,
                "/subscriptions/s1/operationresults/eyJqb2JJZCI6IlJFU09VUkNF",
                "2022-12-01",
            ),
            "long-running",
        ),
    ];
    for (name, service) in cases {
        let found = pack_entry(&name).unwrap_or_else(|| panic!("{name} is not in the pack"));
        assert!(
            found.contains(service),
            "{name}: expected {service}, found {found}"
        );
    }
    // Ordinary reads are not.
    assert_eq!(
        pack_entry(&post("Microsoft.Compute/virtualMachines/vm1/start")),
        None
    );
    assert_eq!(
        pack_entry(&operation(
            &Method::GET,
            &arm,
            &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1"),
            "2023-05-01"
        )),
        None
    );
}
