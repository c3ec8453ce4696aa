//! Real request shapes (paths from the Azure REST API specifications) and the
//! RBAC operation and scope each one performs.

#![allow(clippy::unwrap_used)]

use airlock_azure::{AzureEndpoint, ClassifyRequest, classify};
use airlock_core::{Operation, Plane};
use http::{HeaderMap, Method};

const SUB: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const VERSION: &str = "2b17d35b25a94e6c9ec5e3e9d6e0e7a1";

/// One row: a request and what it does.
struct Case {
    method: Method,
    endpoint: AzureEndpoint,
    path: String,
    body: &'static str,
    name: &'static str,
    scope: String,
}

fn arm(
    method: Method,
    path: impl Into<String>,
    name: &'static str,
    scope: impl Into<String>,
) -> Case {
    Case {
        method,
        endpoint: AzureEndpoint::Arm,
        path: path.into(),
        body: "",
        name,
        scope: scope.into(),
    }
}

fn vault(method: Method, path: &str, action: &'static str, scope: &str) -> Case {
    Case {
        method,
        endpoint: AzureEndpoint::KeyVault {
            vault: "kv-agents".into(),
        },
        path: path.into(),
        body: "",
        name: action,
        scope: format!("/providers/Microsoft.KeyVault/vaults/kv-agents{scope}"),
    }
}

fn with_body(mut case: Case, body: &'static str) -> Case {
    case.body = body;
    case
}

fn run(case: &Case) -> Operation {
    let query = match case.endpoint {
        AzureEndpoint::Arm => "api-version=2024-03-01",
        AzureEndpoint::KeyVault { .. } => "api-version=7.5",
        AzureEndpoint::Blob { .. } => "timeout=30",
    };
    classify(&ClassifyRequest {
        method: &case.method,
        endpoint: &case.endpoint,
        path: &case.path,
        query: Some(query),
        headers: &HeaderMap::new(),
        body: case.body.as_bytes(),
    })
    .unwrap_or_else(|error| panic!("{} {} was refused: {error}", case.method, case.path))
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Method as M;
    let rg = format!("{SUB}/resourceGroups/rg-agents");
    let vm = format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm-build-01");
    let sa = format!("{rg}/providers/Microsoft.Storage/storageAccounts/saagents");
    let sql = format!("{rg}/providers/Microsoft.Sql/servers/sql-agents");
    let kv = format!("{rg}/providers/Microsoft.KeyVault/vaults/kv-agents");
    let site = format!("{rg}/providers/Microsoft.Web/sites/app-agents");
    let aks = format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks-agents");
    let mg = "/providers/Microsoft.Management/managementGroups/mg-platform".to_owned();
    let deployment = format!("{rg}/providers/Microsoft.Resources/deployments/deploy-1");
    vec![
        // Compute
        arm(M::GET, &vm, "Microsoft.Compute/virtualMachines/read", &vm),
        arm(M::PUT, &vm, "Microsoft.Compute/virtualMachines/write", &vm),
        arm(
            M::PATCH,
            &vm,
            "Microsoft.Compute/virtualMachines/write",
            &vm,
        ),
        arm(
            M::DELETE,
            &vm,
            "Microsoft.Compute/virtualMachines/delete",
            &vm,
        ),
        arm(
            M::GET,
            format!("{rg}/providers/Microsoft.Compute/virtualMachines"),
            "Microsoft.Compute/virtualMachines/read",
            &rg,
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Compute/virtualMachines"),
            "Microsoft.Compute/virtualMachines/read",
            SUB,
        ),
        arm(
            M::POST,
            format!("{vm}/start"),
            "Microsoft.Compute/virtualMachines/start/action",
            &vm,
        ),
        arm(
            M::POST,
            format!("{vm}/powerOff"),
            "Microsoft.Compute/virtualMachines/powerOff/action",
            &vm,
        ),
        arm(
            M::POST,
            format!("{vm}/deallocate"),
            "Microsoft.Compute/virtualMachines/deallocate/action",
            &vm,
        ),
        arm(
            M::POST,
            format!("{vm}/runCommand"),
            "Microsoft.Compute/virtualMachines/runCommand/action",
            &vm,
        ),
        arm(
            M::PUT,
            format!("{vm}/extensions/CustomScriptExtension"),
            "Microsoft.Compute/virtualMachines/extensions/write",
            format!("{vm}/extensions/CustomScriptExtension"),
        ),
        arm(
            M::PUT,
            format!(
                "{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-1/virtualMachines/0"
            ),
            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write",
            format!(
                "{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-1/virtualMachines/0"
            ),
        ),
        arm(
            M::POST,
            format!("{rg}/providers/Microsoft.Compute/disks/disk-1/beginGetAccess"),
            "Microsoft.Compute/disks/beginGetAccess/action",
            format!("{rg}/providers/Microsoft.Compute/disks/disk-1"),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Compute/locations/westeurope/vmSizes"),
            "Microsoft.Compute/locations/vmSizes/read",
            format!("{SUB}/providers/Microsoft.Compute/locations/westeurope"),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/5f8c2b1e"),
            "Microsoft.Compute/locations/operations/read",
            format!("{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/5f8c2b1e"),
        ),
        // Storage
        arm(M::PUT, &sa, "Microsoft.Storage/storageAccounts/write", &sa),
        arm(
            M::POST,
            format!("{sa}/listKeys"),
            "Microsoft.Storage/storageAccounts/listKeys/action",
            &sa,
        ),
        arm(
            M::POST,
            format!("{sa}/regenerateKey"),
            "Microsoft.Storage/storageAccounts/regenerateKey/action",
            &sa,
        ),
        arm(
            M::POST,
            format!("{sa}/ListAccountSas"),
            "Microsoft.Storage/storageAccounts/ListAccountSas/action",
            &sa,
        ),
        arm(
            M::PUT,
            format!("{sa}/blobServices/default/containers/logs"),
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            format!("{sa}/blobServices/default/containers/logs"),
        ),
        arm(
            M::POST,
            format!("{SUB}/providers/Microsoft.Storage/checkNameAvailability"),
            "Microsoft.Storage/checknameavailability/read",
            SUB,
        ),
        arm(
            M::GET,
            format!(
                "{SUB}/providers/Microsoft.Storage/locations/westeurope/asyncoperations/0c5e2f4a"
            ),
            "Microsoft.Storage/locations/asyncoperations/read",
            format!(
                "{SUB}/providers/Microsoft.Storage/locations/westeurope/asyncoperations/0c5e2f4a"
            ),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Cache/locations/westeurope/operationResults/7d1e"),
            "Microsoft.Cache/locations/operationResults/read",
            format!("{SUB}/providers/Microsoft.Cache/locations/westeurope/operationResults/7d1e"),
        ),
        // Network
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Network/virtualNetworks/vnet-1"),
            "Microsoft.Network/virtualNetworks/write",
            format!("{rg}/providers/Microsoft.Network/virtualNetworks/vnet-1"),
        ),
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Network/virtualNetworks/vnet-1/subnets/default"),
            "Microsoft.Network/virtualNetworks/subnets/write",
            format!("{rg}/providers/Microsoft.Network/virtualNetworks/vnet-1/subnets/default"),
        ),
        arm(
            M::DELETE,
            format!(
                "{rg}/providers/Microsoft.Network/networkSecurityGroups/nsg-1/securityRules/allow-ssh"
            ),
            "Microsoft.Network/networkSecurityGroups/securityRules/delete",
            format!(
                "{rg}/providers/Microsoft.Network/networkSecurityGroups/nsg-1/securityRules/allow-ssh"
            ),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Network/publicIPAddresses"),
            "Microsoft.Network/publicIPAddresses/read",
            SUB,
        ),
        arm(
            M::PUT,
            format!(
                "{rg}/providers/Microsoft.Network/privateDnsZones/privatelink.vaultcore.azure.net/A/kv-agents"
            ),
            "Microsoft.Network/privateDnsZones/A/write",
            format!(
                "{rg}/providers/Microsoft.Network/privateDnsZones/privatelink.vaultcore.azure.net/A/kv-agents"
            ),
        ),
        // SQL
        arm(
            M::GET,
            format!("{sql}/databases/db-1"),
            "Microsoft.Sql/servers/databases/read",
            format!("{sql}/databases/db-1"),
        ),
        arm(
            M::GET,
            format!("{sql}/databases"),
            "Microsoft.Sql/servers/databases/read",
            &sql,
        ),
        arm(
            M::PUT,
            format!("{sql}/firewallRules/AllowAllWindowsAzureIps"),
            "Microsoft.Sql/servers/firewallRules/write",
            format!("{sql}/firewallRules/AllowAllWindowsAzureIps"),
        ),
        arm(
            M::POST,
            format!("{SUB}/providers/Microsoft.Sql/checkNameAvailability"),
            "Microsoft.Sql/checkNameAvailability/action",
            SUB,
        ),
        // Key Vault (management plane)
        arm(M::PUT, &kv, "Microsoft.KeyVault/vaults/write", &kv),
        arm(
            M::PUT,
            format!("{kv}/accessPolicies/add"),
            "Microsoft.KeyVault/vaults/accessPolicies/write",
            format!("{kv}/accessPolicies/add"),
        ),
        arm(
            M::PUT,
            format!("{kv}/secrets/db-password"),
            "Microsoft.KeyVault/vaults/secrets/write",
            format!("{kv}/secrets/db-password"),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.KeyVault/deletedVaults"),
            "Microsoft.KeyVault/deletedVaults/read",
            SUB,
        ),
        arm(
            M::POST,
            format!(
                "{SUB}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-old/purge"
            ),
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            format!("{SUB}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-old"),
        ),
        arm(
            M::POST,
            format!("{SUB}/providers/Microsoft.KeyVault/checkNameAvailability"),
            "Microsoft.KeyVault/checknameavailability/read",
            SUB,
        ),
        // Web apps
        arm(M::PUT, &site, "Microsoft.Web/sites/write", &site),
        arm(
            M::POST,
            format!("{site}/config/appsettings/list"),
            "Microsoft.Web/sites/config/list/action",
            format!("{site}/config/appsettings"),
        ),
        arm(
            M::POST,
            format!("{site}/restart"),
            "Microsoft.Web/sites/restart/action",
            &site,
        ),
        arm(
            M::POST,
            format!("{site}/publishxml"),
            "Microsoft.Web/sites/publishxml/action",
            &site,
        ),
        arm(
            M::PUT,
            format!("{site}/slots/staging"),
            "Microsoft.Web/sites/slots/write",
            format!("{site}/slots/staging"),
        ),
        arm(
            M::POST,
            format!("{site}/host/default/listkeys"),
            "Microsoft.Web/sites/host/listkeys/action",
            format!("{site}/host/default"),
        ),
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Web/serverfarms/plan-1"),
            "Microsoft.Web/serverfarms/write",
            format!("{rg}/providers/Microsoft.Web/serverfarms/plan-1"),
        ),
        // AKS
        arm(
            M::PUT,
            &aks,
            "Microsoft.ContainerService/managedClusters/write",
            &aks,
        ),
        arm(
            M::POST,
            format!("{aks}/listClusterAdminCredential"),
            "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
            &aks,
        ),
        arm(
            M::POST,
            format!("{aks}/runCommand"),
            "Microsoft.ContainerService/managedClusters/runCommand/action",
            &aks,
        ),
        arm(
            M::PUT,
            format!("{aks}/agentPools/nodepool1"),
            "Microsoft.ContainerService/managedClusters/agentPools/write",
            format!("{aks}/agentPools/nodepool1"),
        ),
        // Other secret-bearing and privileged actions
        arm(
            M::POST,
            format!("{rg}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-1/listKeys"),
            "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
            format!("{rg}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-1"),
        ),
        arm(
            M::POST,
            format!("{rg}/providers/Microsoft.CognitiveServices/accounts/oai-1/listKeys"),
            "Microsoft.CognitiveServices/accounts/listKeys/action",
            format!("{rg}/providers/Microsoft.CognitiveServices/accounts/oai-1"),
        ),
        arm(
            M::PUT,
            format!(
                "{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-1/federatedIdentityCredentials/github"
            ),
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            format!(
                "{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-1/federatedIdentityCredentials/github"
            ),
        ),
        arm(
            M::PUT,
            format!("{vm}/providers/Microsoft.Insights/diagnosticSettings/to-law"),
            "Microsoft.Insights/diagnosticSettings/write",
            format!("{vm}/providers/Microsoft.Insights/diagnosticSettings/to-law"),
        ),
        // Role assignments and definitions at several scopes
        arm(
            M::PUT,
            format!("{SUB}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
            "Microsoft.Authorization/roleAssignments/write",
            format!("{SUB}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
        ),
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
            "Microsoft.Authorization/roleAssignments/write",
            format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
        ),
        arm(
            M::PUT,
            format!("{sa}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
            "Microsoft.Authorization/roleAssignments/write",
            format!("{sa}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
        ),
        arm(
            M::PUT,
            format!("{mg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
            "Microsoft.Authorization/roleAssignments/write",
            format!("{mg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
        ),
        arm(
            M::DELETE,
            format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
            "Microsoft.Authorization/roleAssignments/delete",
            format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{ROLE}"),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Authorization/roleAssignments"),
            "Microsoft.Authorization/roleAssignments/read",
            SUB,
        ),
        arm(
            M::PUT,
            format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
            "Microsoft.Authorization/roleDefinitions/write",
            format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
        ),
        arm(
            M::GET,
            format!("/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
            "Microsoft.Authorization/roleDefinitions/read",
            format!("/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
        ),
        // Locks
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Authorization/locks/do-not-delete"),
            "Microsoft.Authorization/locks/write",
            format!("{rg}/providers/Microsoft.Authorization/locks/do-not-delete"),
        ),
        arm(
            M::DELETE,
            format!("{SUB}/providers/Microsoft.Authorization/locks/do-not-delete"),
            "Microsoft.Authorization/locks/delete",
            format!("{SUB}/providers/Microsoft.Authorization/locks/do-not-delete"),
        ),
        arm(
            M::PUT,
            format!("{sa}/providers/Microsoft.Authorization/locks/read-only"),
            "Microsoft.Authorization/locks/write",
            format!("{sa}/providers/Microsoft.Authorization/locks/read-only"),
        ),
        // Policy
        arm(
            M::PUT,
            format!("{SUB}/providers/Microsoft.Authorization/policyAssignments/require-tags"),
            "Microsoft.Authorization/policyAssignments/write",
            format!("{SUB}/providers/Microsoft.Authorization/policyAssignments/require-tags"),
        ),
        arm(
            M::PUT,
            format!("{mg}/providers/Microsoft.Authorization/policyAssignments/allowed-locations"),
            "Microsoft.Authorization/policyAssignments/write",
            format!("{mg}/providers/Microsoft.Authorization/policyAssignments/allowed-locations"),
        ),
        arm(
            M::PUT,
            format!("{SUB}/providers/Microsoft.Authorization/policyDefinitions/deny-public-ip"),
            "Microsoft.Authorization/policyDefinitions/write",
            format!("{SUB}/providers/Microsoft.Authorization/policyDefinitions/deny-public-ip"),
        ),
        // Subscriptions, resource groups, providers
        arm(
            M::GET,
            "/subscriptions",
            "Microsoft.Resources/subscriptions/read",
            "/",
        ),
        arm(M::GET, SUB, "Microsoft.Resources/subscriptions/read", SUB),
        arm(M::GET, "/tenants", "Microsoft.Resources/tenants/read", "/"),
        arm(
            M::GET,
            format!("{SUB}/locations"),
            "Microsoft.Resources/subscriptions/locations/read",
            SUB,
        ),
        arm(
            M::GET,
            format!("{SUB}/resourcegroups"),
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            SUB,
        ),
        arm(
            M::PUT,
            &rg,
            "Microsoft.Resources/subscriptions/resourceGroups/write",
            &rg,
        ),
        arm(
            M::PATCH,
            &rg,
            "Microsoft.Resources/subscriptions/resourceGroups/write",
            &rg,
        ),
        arm(
            M::HEAD,
            &rg,
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            &rg,
        ),
        arm(
            M::GET,
            format!("{rg}/resources"),
            "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
            &rg,
        ),
        arm(
            M::GET,
            format!("{SUB}/resources"),
            "Microsoft.Resources/subscriptions/resources/read",
            SUB,
        ),
        arm(
            M::POST,
            format!("{rg}/exportTemplate"),
            "Microsoft.Resources/subscriptions/resourceGroups/exportTemplate/action",
            &rg,
        ),
        arm(
            M::GET,
            format!("{SUB}/operationresults/eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQi0"),
            "Microsoft.Resources/subscriptions/operationresults/read",
            format!("{SUB}/operationresults/eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQi0"),
        ),
        arm(
            M::GET,
            format!("{SUB}/providers"),
            "Microsoft.Resources/subscriptions/providers/read",
            SUB,
        ),
        arm(
            M::GET,
            format!("{SUB}/providers/Microsoft.Compute"),
            "Microsoft.Resources/subscriptions/providers/read",
            format!("{SUB}/providers/Microsoft.Compute"),
        ),
        arm(
            M::POST,
            format!("{SUB}/providers/Microsoft.Compute/register"),
            "Microsoft.Compute/register/action",
            SUB,
        ),
        arm(
            M::POST,
            format!("{SUB}/providers/Microsoft.ContainerService/unregister"),
            "Microsoft.ContainerService/unregister/action",
            SUB,
        ),
        arm(
            M::GET,
            "/providers/Microsoft.Compute/operations",
            "Microsoft.Compute/operations/read",
            "/",
        ),
        // Tags
        arm(
            M::PUT,
            format!("{rg}/providers/Microsoft.Resources/tags/default"),
            "Microsoft.Resources/tags/write",
            format!("{rg}/providers/Microsoft.Resources/tags/default"),
        ),
        arm(
            M::PATCH,
            format!("{sa}/providers/Microsoft.Resources/tags/default"),
            "Microsoft.Resources/tags/write",
            format!("{sa}/providers/Microsoft.Resources/tags/default"),
        ),
        arm(
            M::PUT,
            format!("{SUB}/tagNames/cost-center"),
            "Microsoft.Resources/subscriptions/tagNames/write",
            format!("{SUB}/tagNames/cost-center"),
        ),
        arm(
            M::PUT,
            format!("{SUB}/tagNames/cost-center/tagValues/4711"),
            "Microsoft.Resources/subscriptions/tagNames/tagValues/write",
            format!("{SUB}/tagNames/cost-center/tagValues/4711"),
        ),
        // Deployments
        arm(
            M::GET,
            &deployment,
            "Microsoft.Resources/deployments/read",
            &deployment,
        ),
        with_body(
            arm(
                M::PUT,
                &deployment,
                "Microsoft.Resources/deployments/write",
                &deployment,
            ),
            r#"{"properties":{"mode":"Incremental","template":{"resources":[]}}}"#,
        ),
        with_body(
            arm(
                M::POST,
                format!("{deployment}/validate"),
                "Microsoft.Resources/deployments/validate/action",
                &deployment,
            ),
            r#"{"properties":{"mode":"Incremental","template":{"resources":[]}}}"#,
        ),
        with_body(
            arm(
                M::POST,
                format!("{deployment}/whatIf"),
                "Microsoft.Resources/deployments/whatIf/action",
                &deployment,
            ),
            r#"{"properties":{"mode":"Incremental","template":{"resources":[]}}}"#,
        ),
        arm(
            M::POST,
            format!("{deployment}/cancel"),
            "Microsoft.Resources/deployments/cancel/action",
            &deployment,
        ),
        arm(
            M::GET,
            format!("{deployment}/operations"),
            "Microsoft.Resources/deployments/operations/read",
            &deployment,
        ),
        with_body(
            arm(
                M::PUT,
                format!("{SUB}/providers/Microsoft.Resources/deployments/sub-deploy"),
                "Microsoft.Resources/deployments/write",
                format!("{SUB}/providers/Microsoft.Resources/deployments/sub-deploy"),
            ),
            r#"{"location":"westeurope","properties":{"mode":"Incremental","template":{"resources":[]}}}"#,
        ),
        arm(
            M::POST,
            "/providers/Microsoft.Resources/calculateTemplateHash",
            "Microsoft.Resources/calculateTemplateHash/action",
            "/",
        ),
        // Management groups
        arm(
            M::GET,
            "/providers/Microsoft.Management/managementGroups",
            "Microsoft.Management/managementGroups/read",
            "/",
        ),
        arm(
            M::PUT,
            &mg,
            "Microsoft.Management/managementGroups/write",
            &mg,
        ),
        arm(
            M::PUT,
            format!("{mg}{SUB}"),
            "Microsoft.Management/managementGroups/subscriptions/write",
            format!("{mg}{SUB}"),
        ),
        arm(
            M::GET,
            format!("{mg}/descendants"),
            "Microsoft.Management/managementGroups/descendants/read",
            &mg,
        ),
        // Key Vault data plane
        vault(
            M::GET,
            "/secrets/db-password",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "/secrets/db-password",
        ),
        vault(
            M::GET,
            &format!("/secrets/db-password/{VERSION}"),
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "/secrets/db-password",
        ),
        vault(
            M::GET,
            "/secrets",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "",
        ),
        vault(
            M::GET,
            "/secrets/db-password/versions",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "/secrets/db-password",
        ),
        vault(
            M::PUT,
            "/secrets/db-password",
            "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            "/secrets/db-password",
        ),
        vault(
            M::PATCH,
            &format!("/secrets/db-password/{VERSION}"),
            "Microsoft.KeyVault/vaults/secrets/update/action",
            "/secrets/db-password",
        ),
        vault(
            M::DELETE,
            "/secrets/db-password",
            "Microsoft.KeyVault/vaults/secrets/delete",
            "/secrets/db-password",
        ),
        vault(
            M::POST,
            "/secrets/db-password/backup",
            "Microsoft.KeyVault/vaults/secrets/backup/action",
            "/secrets/db-password",
        ),
        vault(
            M::POST,
            "/secrets/restore",
            "Microsoft.KeyVault/vaults/secrets/restore/action",
            "",
        ),
        vault(
            M::GET,
            "/deletedsecrets",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "",
        ),
        vault(
            M::DELETE,
            "/deletedsecrets/db-password",
            "Microsoft.KeyVault/vaults/secrets/purge/action",
            "/secrets/db-password",
        ),
        vault(
            M::POST,
            "/deletedsecrets/db-password/recover",
            "Microsoft.KeyVault/vaults/secrets/recover/action",
            "/secrets/db-password",
        ),
        vault(
            M::GET,
            "/keys/cmk",
            "Microsoft.KeyVault/vaults/keys/read",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            "/keys/cmk/create",
            "Microsoft.KeyVault/vaults/keys/create/action",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            &format!("/keys/cmk/{VERSION}/sign"),
            "Microsoft.KeyVault/vaults/keys/sign/action",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            &format!("/keys/cmk/{VERSION}/wrapkey"),
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            &format!("/keys/cmk/{VERSION}/unwrapkey"),
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            &format!("/keys/cmk/{VERSION}/decrypt"),
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "/keys/cmk",
        ),
        vault(
            M::POST,
            "/keys/cmk/rotate",
            "Microsoft.KeyVault/vaults/keys/rotate/action",
            "/keys/cmk",
        ),
        vault(
            M::GET,
            "/keys/cmk/rotationpolicy",
            "Microsoft.KeyVault/vaults/keyrotationpolicies/read",
            "/keys/cmk",
        ),
        vault(
            M::DELETE,
            "/deletedkeys/cmk",
            "Microsoft.KeyVault/vaults/keys/purge/action",
            "/keys/cmk",
        ),
        vault(
            M::GET,
            "/certificates/tls-agents",
            "Microsoft.KeyVault/vaults/certificates/read",
            "/certificates/tls-agents",
        ),
        vault(
            M::POST,
            "/certificates/tls-agents/import",
            "Microsoft.KeyVault/vaults/certificates/import/action",
            "/certificates/tls-agents",
        ),
        vault(
            M::POST,
            "/certificates/tls-agents/pending/merge",
            "Microsoft.KeyVault/vaults/certificates/create/action",
            "/certificates/tls-agents",
        ),
        vault(
            M::GET,
            "/certificates/issuers/digicert",
            "Microsoft.KeyVault/vaults/certificatecas/read",
            "/certificatecas/digicert",
        ),
        vault(
            M::PUT,
            "/certificates/contacts",
            "Microsoft.KeyVault/vaults/certificatecontacts/write",
            "",
        ),
        vault(
            M::DELETE,
            "/deletedcertificates/tls-agents",
            "Microsoft.KeyVault/vaults/certificates/purge/action",
            "/certificates/tls-agents",
        ),
    ]
}

#[test]
fn real_request_shapes_classify_to_their_rbac_operations() {
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let op = run(case);
        let plane = match case.endpoint {
            AzureEndpoint::Arm => Plane::Management,
            AzureEndpoint::KeyVault { .. } | AzureEndpoint::Blob { .. } => Plane::Data,
        };
        if op.is_unknown()
            || op.name() != case.name
            || op.scope().as_str() != case.scope
            || op.plane() != plane
        {
            failures.push(format!(
                "{} {}\n   expected {} on {}\n   got      {} on {}{}",
                case.method,
                case.path,
                case.name,
                case.scope,
                op.name(),
                op.scope(),
                if op.is_unknown() { " (unknown)" } else { "" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_api_version_rides_along() {
    let op = run(&arm(Method::GET, SUB, "", ""));
    assert_eq!(op.api_version(), Some("2024-03-01"));
}

#[test]
fn unknown_shapes_are_unknown_not_errors() {
    let unknown = [
        (Method::GET, "/"),
        (Method::GET, "/foo/bar"),
        (Method::OPTIONS, "/subscriptions/s1"),
        (
            Method::POST,
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        ),
        (
            Method::PUT,
            "/subscriptions/s1/providers/Microsoft.Compute/virtualMachines",
        ),
        (Method::GET, "/subscriptions/s1/resourceGroups/rg/widgets"),
        (
            Method::POST,
            "/subscriptions/s1/resourceGroups/rg/resources",
        ),
        (
            Method::DELETE,
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute",
        ),
        (Method::GET, "/batch"),
    ];
    for (method, path) in unknown {
        let op = classify(&ClassifyRequest {
            method: &method,
            endpoint: &AzureEndpoint::Arm,
            path,
            query: Some("api-version=2024-03-01"),
            headers: &HeaderMap::new(),
            body: b"",
        })
        .unwrap();
        assert!(op.is_unknown(), "{method} {path} was named {}", op.name());
        assert_eq!(op.name(), format!("{method} {path}"));
    }
}
