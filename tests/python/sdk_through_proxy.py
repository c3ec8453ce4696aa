"""The Azure SDK for Python, unchanged, through Airlock in forward-proxy mode.

Only HTTPS_PROXY and REQUESTS_CA_BUNDLE point it at the gateway: it calls
https://management.azure.com and https://{vault}.vault.azure.net by their
real names. The agent's token comes from AIRLOCK_AGENT_TOKEN (standing in
for whatever credential the agent signs in with). Prints one JSON object:
what the SDK saw.
"""

import json
import os
import sys
import time

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient
from azure.mgmt.resource.resources import ResourceManagementClient


class AgentToken:
    """A TokenCredential that returns the agent's token for every scope."""

    def __init__(self, token):
        self.token = token
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def main():
    credential = AgentToken(os.environ["AIRLOCK_AGENT_TOKEN"])
    subscription = os.environ["AIRLOCK_SUBSCRIPTION"]
    vault = os.environ["AIRLOCK_VAULT"]
    seen = {}
    arm = ResourceManagementClient(credential, subscription)
    seen["groups"] = sorted(group.name for group in arm.resource_groups.list())
    secrets = SecretClient(f"https://{vault}.vault.azure.net", credential)
    seen["secret"] = secrets.get_secret(os.environ["AIRLOCK_SECRET"]).value
    try:
        arm.resource_groups.begin_delete(seen["groups"][0]).result()
        seen["delete"] = "allowed"
    except HttpResponseError as error:
        seen["delete"] = {"status": error.status_code, "code": error.error.code if error.error else None,
                          "message": str(error.message)}
    seen["scopes"] = sorted(set(credential.scopes))
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
