//! Everything the simulated Azure holds, and the seeded starting state.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::arm_error::ArmError;
use crate::compute::VirtualMachine;
use crate::key_vault::Vault;
use crate::operations::LongRunningOperation;
use crate::resource_groups::ResourceGroup;
use crate::storage::StorageAccount;
use crate::{RESOURCE_GROUP, SECRET_NAME, SECRET_VALUE, STORAGE_ACCOUNTS, VAULT, VIRTUAL_MACHINES};

/// The seeded location.
pub(crate) const LOCATION: &str = "westeurope";

/// Where a resource is in its life, as ARM reports it in `properties.provisioningState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProvisioningState {
    /// Being created by a long-running operation.
    Creating,
    /// Ready.
    Succeeded,
    /// Being deleted by a long-running operation.
    Deleting,
}

impl ProvisioningState {
    /// The name ARM uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::Creating => "Creating",
            ProvisioningState::Succeeded => "Succeeded",
            ProvisioningState::Deleting => "Deleting",
        }
    }
}

/// Resources, operations and vaults. Names are keyed lower-case: Azure compares them case-insensitively.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    /// Resource groups by name.
    pub(crate) groups: BTreeMap<String, ResourceGroup>,
    /// Storage accounts by name (globally unique, as in Azure).
    pub(crate) storage_accounts: BTreeMap<String, StorageAccount>,
    /// Virtual machines by (group, name).
    pub(crate) virtual_machines: BTreeMap<(String, String), VirtualMachine>,
    /// Long-running operations by id.
    pub(crate) operations: HashMap<String, LongRunningOperation>,
    /// Key Vaults by name.
    pub(crate) vaults: BTreeMap<String, Vault>,
    /// Blob containers of the storage accounts.
    pub(crate) blob_containers: crate::blob::Containers,
    /// What-if results by operation id.
    pub(crate) what_ifs: HashMap<String, serde_json::Value>,
}

/// The key a name is stored under.
pub(crate) fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Inventory {
    /// The seeded inventory: one resource group with five storage accounts and
    /// two virtual machines, and one vault with one secret.
    pub(crate) fn seeded(now: SystemTime) -> Self {
        let mut inventory = Self::default();
        inventory.groups.insert(
            key(RESOURCE_GROUP),
            ResourceGroup::new(RESOURCE_GROUP, LOCATION, None),
        );
        for name in STORAGE_ACCOUNTS {
            let account = StorageAccount::seeded(name, RESOURCE_GROUP, LOCATION, now);
            inventory.storage_accounts.insert(key(name), account);
        }
        for (name, size) in VIRTUAL_MACHINES
            .into_iter()
            .zip(["Standard_B2s", "Standard_D2s_v5"])
        {
            let machine = VirtualMachine::seeded(name, RESOURCE_GROUP, LOCATION, size, now);
            inventory
                .virtual_machines
                .insert((key(RESOURCE_GROUP), key(name)), machine);
        }
        let mut vault = Vault::new(VAULT);
        vault.set_secret(
            SECRET_NAME,
            SECRET_VALUE.to_owned(),
            None,
            serde_json::Map::new(),
            true,
            now,
        );
        inventory.vaults.insert(key(VAULT), vault);
        inventory
    }

    /// The resource group `name`, or 404 `ResourceGroupNotFound`.
    pub(crate) fn group(&self, name: &str) -> Result<&ResourceGroup, ArmError> {
        self.groups
            .get(&key(name))
            .ok_or_else(|| ArmError::resource_group_not_found(name))
    }

    /// Removes a resource group and everything in it.
    pub(crate) fn remove_group(&mut self, name: &str) {
        let group = key(name);
        self.groups.remove(&group);
        self.storage_accounts
            .retain(|_, account| key(&account.group) != group);
        self.virtual_machines
            .retain(|(machine_group, _), _| *machine_group != group);
    }
}
