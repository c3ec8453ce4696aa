//! [`AuditEvent`]: what is kept of one request, the schema sinks store and
//! `airlock audit export` emits (one JSON object per line).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One request, as the audit trail keeps it. Bodies are the masked,
/// size-capped excerpts the masking layer made; tokens are never here.
///
/// Field order is part of the chain's canonical encoding: add fields at the
/// end with `#[serde(default)]` and a `skip_serializing_if` that leaves them
/// out when unset, so that events written before them hash as they did;
/// change anything else only with a new [`crate::chain::CHAIN_VERSION`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// A unique id (UUID v4).
    pub id: String,
    /// When the request arrived (RFC 3339, milliseconds).
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub time: SystemTime,
    /// From arrival until the response body was sent (or failed), in milliseconds.
    pub duration_ms: u64,
    /// Airlock's request id (`x-airlock-request-id`).
    pub request_id: Option<String>,
    /// The session the request belongs to.
    pub session_id: String,
    /// The HTTP method.
    pub method: String,
    /// The host the client addressed (ARM or `{vault}.…`).
    pub host: Option<String>,
    /// The path, without the query (queries can carry SAS signatures).
    pub path: String,
    /// The `api-version` query parameter, if any.
    pub api_version: Option<String>,
    /// Who asked, if the token was verified.
    pub principal: Option<EventPrincipal>,
    /// The RBAC operation and every operation it carries, depth first.
    pub operations: Vec<String>,
    /// The scope of the main operation.
    pub scope: Option<String>,
    /// `allow`, `deny` or `requireApproval`; none if no decision was made.
    pub decision: Option<String>,
    /// The rule behind the decision.
    pub rule: Option<String>,
    /// The approval involved, if any.
    pub approval_id: Option<String>,
    /// Who approved it.
    pub approvers: Vec<String>,
    /// The requester's justification.
    pub justification: Option<String>,
    /// How many values were masked in the response.
    pub masked_count: u32,
    /// Where they were (JSON paths, never values).
    pub masked_paths: Vec<String>,
    /// The masked request body excerpt.
    pub request_body: Option<String>,
    /// The masked response body excerpt.
    pub response_body: Option<String>,
    /// The status the client got.
    pub status: u16,
    /// How the exchange ended.
    pub outcome: Outcome,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// The status Azure answered with, if the request went upstream.
    pub upstream_status: Option<u16>,
    /// Azure's `x-ms-request-id`, to join with the Activity Log.
    pub upstream_request_id: Option<String>,
    /// Azure's `x-ms-correlation-request-id`.
    pub upstream_correlation_id: Option<String>,
    /// The error code Airlock answered with, if it refused or failed.
    pub error_code: Option<String>,
    /// Azure's record of the client request id the gateway sent
    /// (`x-ms-client-request-id`): the Activity Log's `clientRequestId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_client_request_id: Option<String>,
    /// The SHA-256 (hex) of the whole request body, when it had one: the
    /// excerpt is capped and masked, the digest names the exact body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_sha256: Option<String>,
    /// The Azure identity the gateway sent the request as
    /// (`[[upstream.identities]]` name, or `default`), if it went upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_identity: Option<String>,
    /// Whether that identity was granted for this one request by an
    /// approval (`elevate_to`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub elevated: bool,
    /// The gateway replica that served the request (`[store] replica`),
    /// when several share one database: each writes its own chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The user who confirmed what their agent asked for (object id),
    /// where a rule let the acting user confirm instead of approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    /// Each classified operation with its plane and scope, depth first (the
    /// first is the request's own): what `airlock policy replay` decides
    /// again. Empty in events recorded before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classified: Vec<RecordedOperation>,
    /// Observe mode: what a rule would have done had it enforced (`deny`
    /// or `requireApproval`), while the request went on as `decision` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_have: Option<String>,
    /// The observe-mode rule behind [`would_have`](Self::would_have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_have_rule: Option<String>,
    /// Where values reached the client in clear (paths, never values):
    /// revealed by a reveal rule or an approval. The body excerpts above
    /// stay masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revealed: Vec<String>,
    /// What revealed them: `rule '<name>'` or `approval <id> (rule '<name>')`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revealed_by: Option<String>,
}

/// One classified operation, as the trail keeps it for deciding it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedOperation {
    /// The RBAC operation (`Microsoft.Storage/storageAccounts/read`).
    pub name: String,
    /// A data action (Key Vault, Storage data), not a management one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data: bool,
    /// The resource id or scope it acts on.
    pub scope: String,
    /// The classifier did not understand the request (`name` is a placeholder).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

/// The verified caller, as kept in the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPrincipal {
    /// Object id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// `managed_identity`, `application`, `user`, `agent`,
    /// `agent_for_user` or `agent_user`.
    pub kind: String,
    /// Display name, where the token carried one.
    pub display_name: Option<String>,
    /// The client application id.
    pub app_id: Option<String>,
    /// The AI agent behind the request (Entra Agent ID), for the kinds
    /// `agent`, `agent_for_user` (the principal is the user, this is who
    /// acted for them) and `agent_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<airlock_core::Agent>,
    /// Entra group object ids the token carried (for deciding the request
    /// again: `airlock policy replay`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// App roles the token carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl EventPrincipal {
    /// Who asked, in words: the display name (else the object id), and for
    /// an AI agent which one (see [`airlock_core::describe_requester`]).
    pub fn label(&self) -> String {
        airlock_core::describe_requester(
            self.display_name.as_deref().unwrap_or(&self.id),
            Some(&self.kind),
            self.agent.as_ref(),
        )
    }
}

/// How the exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The whole response was sent.
    Completed,
    /// The response body failed while being sent.
    Failed,
    /// The client went away before the response was sent in full.
    ClientGone,
}

impl RecordedOperation {
    /// What the trail keeps of `operation` (not the operations it carries).
    pub fn of(operation: &airlock_core::Operation) -> Self {
        Self {
            name: operation.name().to_owned(),
            data: operation.plane() == airlock_core::Plane::Data,
            scope: operation.scope().as_str().to_owned(),
            unknown: operation.is_unknown(),
        }
    }

    fn to_operation(&self) -> airlock_core::Operation {
        let plane = if self.data {
            airlock_core::Plane::Data
        } else {
            airlock_core::Plane::Management
        };
        let scope = airlock_core::ResourceScope::new(self.scope.as_str());
        if self.unknown {
            airlock_core::Operation::unknown(self.name.as_str(), plane, scope)
        } else {
            airlock_core::Operation::new(self.name.as_str(), plane, scope)
        }
    }
}

impl AuditEvent {
    /// The request as policy saw it, to decide it again (`airlock policy
    /// replay`): who asked and the operation with every operation it
    /// carried, in the order policy walked them. `None` when the event does
    /// not hold them: no verified caller, no classification (refused
    /// before policy), or recorded before operations were kept this way.
    ///
    /// ```
    /// # let mut event: airlock_recorder::AuditEvent = serde_json::from_str(airlock_recorder::chain::EXAMPLE_EVENT).unwrap();
    /// use airlock_recorder::{EventPrincipal, RecordedOperation};
    /// event.principal = Some(EventPrincipal {
    ///     id: "oid-1".into(),
    ///     tenant_id: "t".into(),
    ///     kind: "managed_identity".into(),
    ///     display_name: None,
    ///     app_id: None,
    ///     agent: None,
    ///     groups: vec!["agents".into()],
    ///     roles: Vec::new(),
    /// });
    /// event.classified = vec![RecordedOperation {
    ///     name: "Microsoft.Resources/subscriptions/resourceGroups/delete".into(),
    ///     data: false,
    ///     scope: "/subscriptions/s/resourcegroups/rg".into(),
    ///     unknown: false,
    /// }];
    /// let (principal, operation) = event.decided_request().unwrap();
    /// assert!(principal.id() == "oid-1" && principal.in_group("agents"));
    /// assert_eq!(operation.name(), "Microsoft.Resources/subscriptions/resourceGroups/delete");
    /// ```
    pub fn decided_request(&self) -> Option<(airlock_core::Principal, airlock_core::Operation)> {
        let principal = self.principal.as_ref()?.to_principal()?;
        let (first, carried) = self.classified.split_first()?;
        let operation = carried.iter().fold(first.to_operation(), |root, op| {
            root.with_child(op.to_operation())
        });
        Some((principal, operation))
    }
}

impl EventPrincipal {
    /// The principal again, as far as the trail kept it (no raw claims);
    /// `None` for a kind this build does not know.
    pub fn to_principal(&self) -> Option<airlock_core::Principal> {
        let kind = airlock_core::PrincipalKind::parse(&self.kind)?;
        let mut builder = airlock_core::Principal::builder(self.id.as_str(), kind)
            .tenant_id(self.tenant_id.as_str())
            .groups(self.groups.iter().map(String::as_str))
            .roles(self.roles.iter().map(String::as_str));
        if let Some(app_id) = &self.app_id {
            builder = builder.app_id(app_id.as_str());
        }
        if let Some(name) = &self.display_name {
            builder = builder.display_name(name.as_str());
        }
        if let Some(agent) = &self.agent {
            builder = builder.agent(agent.clone());
        }
        Some(builder.build())
    }
}
