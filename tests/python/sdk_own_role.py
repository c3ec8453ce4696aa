"""The Azure SDK for Python through Airlock's forward proxy, with a caller's
own token for Azure (AIRLOCK_AGENT_TOKEN), which the gateway forwards as it
is (`forward_caller_token`): Azure applies that caller's own role, an
agent's or a person's. Reads resource group AIRLOCK_GROUP, then tries to
write it. Prints one JSON object: what the SDK saw.
"""

import json
import os
import sys
import time

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient


class OwnToken:
    """A TokenCredential that returns the caller's token for every scope."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def main():
    arm = ResourceManagementClient(OwnToken(os.environ["AIRLOCK_AGENT_TOKEN"]), os.environ["AIRLOCK_SUBSCRIPTION"])
    group = os.environ["AIRLOCK_GROUP"]
    seen = {"group": arm.resource_groups.get(group).name}
    try:
        arm.resource_groups.create_or_update(group, {"location": "westeurope", "tags": {"owner": "agent"}})
        seen["write"] = "allowed"
    except HttpResponseError as error:
        seen["write"] = {"status": error.status_code, "code": error.error.code if error.error else None}
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
