//! Virtual machines (`Microsoft.Compute/virtualMachines`): get, list, delete
//! as a long-running operation.

use std::time::SystemTime;

use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::SUBSCRIPTION_ID;
use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::inventory::{ProvisioningState, key};
use crate::operations::{COMPUTE, Completion};
use crate::reply::Reply;
use crate::state::SimState;
use crate::timestamp::rfc3339;

const RESOURCE_TYPE: &str = "Microsoft.Compute/virtualMachines";

/// A virtual machine.
#[derive(Debug)]
pub(crate) struct VirtualMachine {
    name: String,
    group: String,
    location: String,
    size: String,
    vm_id: String,
    created: SystemTime,
    provisioning: ProvisioningState,
}

impl VirtualMachine {
    /// A running machine, as seeded; its `vmId` is derived from its name.
    pub(crate) fn seeded(
        name: &str,
        group: &str,
        location: &str,
        size: &str,
        created: SystemTime,
    ) -> Self {
        let digest = Sha256::digest(format!("airlock-sim/vm/{name}"));
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let vm_id = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        Self {
            name: name.to_owned(),
            group: group.to_owned(),
            location: location.to_owned(),
            size: size.to_owned(),
            vm_id,
            created,
            provisioning: ProvisioningState::Succeeded,
        }
    }

    /// The machine as ARM returns it.
    fn to_json(&self) -> Value {
        let name = &self.name;
        let group_id = format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}",
            self.group
        );
        json!({
            "id": format!("{group_id}/providers/{RESOURCE_TYPE}/{name}"),
            "name": name,
            "type": RESOURCE_TYPE,
            "location": self.location,
            "tags": {},
            "properties": {
                "vmId": self.vm_id,
                "hardwareProfile": { "vmSize": self.size },
                "storageProfile": {
                    "imageReference": {
                        "publisher": "Canonical",
                        "offer": "ubuntu-24_04-lts",
                        "sku": "server",
                        "version": "latest",
                    },
                    "osDisk": {
                        "osType": "Linux",
                        "name": format!("{name}-osdisk"),
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "managedDisk": {
                            "storageAccountType": "Premium_LRS",
                            "id": format!("{group_id}/providers/Microsoft.Compute/disks/{name}-osdisk"),
                        },
                        "diskSizeGB": 30,
                    },
                    "dataDisks": [],
                },
                "osProfile": {
                    "computerName": name,
                    "adminUsername": "azureuser",
                    "linuxConfiguration": { "disablePasswordAuthentication": true },
                },
                "networkProfile": {
                    "networkInterfaces": [
                        { "id": format!("{group_id}/providers/Microsoft.Network/networkInterfaces/{name}-nic") }
                    ],
                },
                "provisioningState": self.provisioning.as_str(),
                "timeCreated": rfc3339(self.created),
            },
        })
    }
}

/// `GET /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines`.
pub(crate) fn list_in_subscription(
    state: &SimState,
    _: &ArmRequest<'_>,
    _: &[&str],
) -> Result<Reply, ArmError> {
    let machines: Vec<Value> = state
        .inventory()
        .virtual_machines
        .values()
        .map(VirtualMachine::to_json)
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "value": machines })))
}

/// `GET …/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines`.
pub(crate) fn list_in_group(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let group = captures.get(1).copied().unwrap_or_default();
    let inventory = state.inventory();
    inventory.group(group)?;
    let machines: Vec<Value> = inventory
        .virtual_machines
        .iter()
        .filter(|((machine_group, _), _)| *machine_group == key(group))
        .map(|(_, machine)| machine.to_json())
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "value": machines })))
}

/// `GET|DELETE …/virtualMachines/{name}`.
pub(crate) fn machine(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let (group, name) = (
        captures.get(1).copied().unwrap_or_default(),
        captures.get(2).copied().unwrap_or_default(),
    );
    let mut inventory = state.inventory();
    inventory.group(group)?;
    let id = (key(group), key(name));
    let machine = inventory
        .virtual_machines
        .get_mut(&id)
        .ok_or_else(|| ArmError::resource_not_found(RESOURCE_TYPE, name, group))?;
    if *request.method != http::Method::DELETE {
        return Ok(Reply::json(StatusCode::OK, machine.to_json()));
    }
    machine.provisioning = ProvisioningState::Deleting;
    let location = machine.location.clone();
    let completion = Completion::DeleteVirtualMachine {
        group: id.0,
        machine: id.1,
    };
    let operation = inventory.start_operation(
        &state.config,
        COMPUTE,
        &location,
        &request.api_version,
        completion,
    );
    Ok(operation.polling_headers(&state.config, Reply::empty(StatusCode::ACCEPTED)))
}
