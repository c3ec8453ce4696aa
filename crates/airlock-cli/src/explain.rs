//! `airlock policy explain`: what the gateway would decide for one request,
//! and why, rule by rule, without sending anything anywhere.

use std::fmt::Write as _;

use airlock_azure::{ClassifyRequest, classify};
use airlock_core::{Agent, Decision, Principal, PrincipalKind};
use airlock_policy::{Facet, Policy};
use anyhow::{Context as _, anyhow, bail};
use http::{HeaderMap, Method, Uri};

use airlock_gateway::Config;
use airlock_gateway::config::PolicyMode;

/// Parses `id=…,kind=…,groups=a|b,roles=r|s,app_id=…,tenant=…,name=…`, and
/// for the agent kinds `agent=<agent app id>,blueprint=…`.
///
/// # Errors
///
/// An unknown key, a missing `id`, an unknown kind, or an agent kind without its agent.
pub fn parse_principal(spec: &str) -> anyhow::Result<Principal> {
    let mut id = None;
    let mut kind = PrincipalKind::Application;
    let (mut groups, mut roles) = (Vec::new(), Vec::new());
    let (mut app_id, mut tenant, mut name) = (None, None, None);
    let (mut agent, mut blueprint) = (None, None);
    for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            anyhow!("'{pair}' is not key=value; write e.g. id=…,kind=managed_identity,groups=g1|g2")
        })?;
        let list = || value.split('|').map(str::to_owned).collect::<Vec<_>>();
        match key.trim() {
            "id" => id = Some(value.to_owned()),
            "kind" => {
                kind = PrincipalKind::parse(value).ok_or_else(|| {
                    anyhow!("kind '{value}' is not one of {}", PrincipalKind::names())
                })?;
            }
            "groups" => groups = list(),
            "roles" => roles = list(),
            "app_id" => app_id = Some(value.to_owned()),
            "tenant" => tenant = Some(value.to_owned()),
            "name" => name = Some(value.to_owned()),
            "agent" => agent = Some(value.to_owned()),
            "blueprint" => blueprint = Some(value.to_owned()),
            other => bail!(
                "unknown principal key '{other}'; use id, kind, groups, roles, app_id, tenant, name, agent, blueprint"
            ),
        }
    }
    let id = id.ok_or_else(|| anyhow!("the principal needs an id (id=<object id>)"))?;
    let mut builder = Principal::builder(id, kind).groups(groups).roles(roles);
    match (kind.is_agent(), agent.or_else(|| app_id.clone())) {
        (true, Some(agent_app)) => {
            let mut agent = Agent::new(agent_app.clone());
            if let Some(blueprint) = blueprint {
                agent = agent.blueprint(blueprint);
            }
            builder = builder.agent(agent);
            app_id = app_id.or(Some(agent_app));
        }
        (true, None) => bail!("kind={kind} needs the agent's app id: add agent=<app id>"),
        (false, _) if blueprint.is_some() => {
            bail!("blueprint= only applies to kind=agent, agent_for_user or agent_user")
        }
        (false, _) => {}
    }
    if let Some(app_id) = app_id {
        builder = builder.app_id(app_id);
    }
    if let Some(tenant) = tenant {
        builder = builder.tenant_id(tenant);
    }
    if let Some(name) = name {
        builder = builder.display_name(name);
    }
    Ok(builder.build())
}

/// Classifies `request` (`"METHOD /path?query"` or `"METHOD https://host/path?query"`)
/// as the gateway configured by `config` would, decides it with the
/// configured policy, and renders the answer.
///
/// # Errors
///
/// A malformed request line, a host the gateway does not serve, a request
/// the classifier refuses (with its 400 message), or an invalid policy.
pub fn explain(
    config: &Config,
    principal: &Principal,
    request: &str,
    body: &[u8],
) -> anyhow::Result<(Decision, String)> {
    let (method, target) = request
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("write the request as \"METHOD /path?api-version=…\""))?;
    let method: Method = method
        .parse()
        .with_context(|| format!("'{method}' is not an HTTP method"))?;
    let uri: Uri = target
        .trim()
        .parse()
        .with_context(|| format!("'{target}' is not a request target"))?;
    let routes = config.routes()?;
    // A path alone is addressed to the gateway's own host (ARM).
    let public = config.public_url()?;
    let host = uri
        .authority()
        .or(public.authority())
        .map_or_else(String::new, ToString::to_string);
    let mut host_header = HeaderMap::new();
    host_header.insert(
        http::header::HOST,
        host.parse()
            .with_context(|| format!("'{host}' is not a host"))?,
    );
    let endpoint = routes
        .resolve(&uri, &host_header)
        .map_err(|e| anyhow!("{e}"))?;
    let headers = HeaderMap::new();
    let operation = classify(&ClassifyRequest {
        method: &method,
        endpoint: &endpoint,
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body,
    })
    .map_err(|e| anyhow!("the gateway would refuse this request with 400: {e}"))?;
    let policy = match config.policy.mode {
        PolicyMode::Enforce => Policy::load(&config.policy.file)?,
        PolicyMode::Observe => Policy::load(&config.policy.file)?.observing_all(),
    };
    let explanation = policy.explain(principal, &operation);
    let (decision, trace) = (explanation.decision, explanation.trace);

    let mut out = String::new();
    let _ = writeln!(out, "principal  {principal}");
    let _ = writeln!(
        out,
        "operation  {operation}{}",
        if operation.is_unknown() {
            "  (not understood: only a rule naming it exactly may allow it)"
        } else {
            ""
        }
    );
    for child in operation.flatten().into_iter().skip(1) {
        let _ = writeln!(out, "  carries  {child}");
    }
    let _ = writeln!(out, "decision   {}", render(&decision));
    if let Some(would) = &explanation.would_have {
        let _ = writeln!(
            out,
            "observed   would have been {} (observe mode: recorded as would_have, not enforced)",
            render(would)
        );
    }
    if explanation.decided_by != Facet::Principal {
        let _ = writeln!(
            out,
            "decided by {} (an agent acting for a user gets only what both are allowed)",
            explanation.decided_by
        );
    }
    for quota in policy.quotas().iter() {
        let counted = quota.counts(principal, &operation);
        if counted > 0 {
            let _ = writeln!(
                out,
                "quota      {quota} counts {counted} operation(s) of this request"
            );
        }
    }
    for rule in policy.answer_rules().iter() {
        if rule.applies(principal, &operation) {
            let _ = writeln!(
                out,
                "answer     rule '{}' looks at the answer: one meeting its conditions waits for approval",
                rule.name()
            );
        }
    }
    let _ = writeln!(out, "\nrules ({}):", config.policy.file.display());
    let mut current = String::new();
    for line in &trace {
        let heading = match line.facet {
            Facet::Principal => line.operation.clone(),
            facet => format!("{} (as {facet})", line.operation),
        };
        if heading != current {
            current = heading;
            let _ = writeln!(out, "  for {current}:");
        }
        let verdict = match (&line.outcome, line.observe) {
            (Ok(()), false) => "APPLIES".to_owned(),
            (Ok(()), true) => "APPLIES (observe mode: not enforced)".to_owned(),
            (Err(skip), _) => format!("skipped: {skip}"),
        };
        let _ = writeln!(
            out,
            "    {:<8} {:<32} (line {:>3})  {verdict}",
            line.effect.to_string(),
            line.rule,
            line.line
        );
    }
    Ok((decision, out))
}

fn render(decision: &Decision) -> String {
    match decision {
        Decision::Allow { rule } => format!("ALLOW by rule '{rule}'"),
        Decision::Deny { rule, reason } => format!("DENY by rule '{rule}': {reason}"),
        Decision::RequireApproval {
            rule,
            approvers,
            min_approvals,
            elevate_to,
            ..
        } => format!(
            "APPROVAL REQUIRED by rule '{rule}': {min_approvals} of groups {:?} / ids {:?}{}",
            approvers.groups,
            approvers.ids,
            elevate_to
                .as_ref()
                .map(|identity| format!(
                    "; once approved it runs elevated, as upstream identity '{identity}'"
                ))
                .unwrap_or_default()
        ),
    }
}
