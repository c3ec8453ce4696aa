//! Which Azure identity the gateway acts as for a request: one per group of
//! agents, and another for a request a human approved with elevation.
//!
//! Azure's own RBAC then limits each agent even where Airlock's policy is
//! wrong: read-only agents act as a Reader service principal, operators'
//! agents as a Contributor one, and the Activity Log names which acted.

use std::sync::Arc;

use airlock_core::{
    AccessToken, AirlockError, CallerToken, Elevation, Principal, PrincipalSelector, TokenExchange,
    TokenProvider,
};

/// The name of the identity `[upstream.credential]` configures.
pub const DEFAULT_IDENTITY: &str = "default";

/// The gateway's Azure identities and who each serves; cheap to clone.
///
/// A request runs as the first identity whose selector matches its
/// principal, else as the default one; a request an approval elevated
/// ([`Elevation`]) runs as the identity it names, whoever asked.
///
/// ```
/// use std::sync::Arc;
/// use airlock_core::{Elevation, Principal, PrincipalKind, PrincipalSelector, StaticTokenProvider};
/// use airlock_upstream::UpstreamIdentities;
///
/// let readers = PrincipalSelector { groups: vec!["readers".into()], ..Default::default() };
/// let identities = UpstreamIdentities::new(Arc::new(StaticTokenProvider::new("default-token")))
///     .with("reader", Arc::new(StaticTokenProvider::new("reader-token")), Some(readers))
///     .with("contributor", Arc::new(StaticTokenProvider::new("contributor-token")), None);
///
/// let agent = Principal::builder("a1", PrincipalKind::ManagedIdentity).groups(["readers"]).build();
/// let mut extensions = http::Extensions::new();
/// extensions.insert(agent);
/// assert_eq!(identities.select(&extensions).unwrap().name(), "reader");
///
/// extensions.insert(Elevation { identity: "contributor".into(), approval_id: "a-1".into() });
/// let chosen = identities.select(&extensions).unwrap();
/// assert_eq!((chosen.name(), chosen.elevated()), ("contributor", true));
/// ```
#[derive(Clone)]
pub struct UpstreamIdentities {
    named: Arc<Vec<Named>>,
}

#[derive(Clone)]
struct Named {
    name: String,
    /// `None`: serves no one by mapping (an elevation target only).
    serves: Option<PrincipalSelector>,
    tokens: Tokens,
}

/// Where an identity's tokens come from.
#[derive(Clone)]
enum Tokens {
    /// The gateway holds the credential.
    Gateway(Arc<dyn TokenProvider>),
    /// The caller's own token, exchanged (on-behalf-of).
    Caller(Arc<dyn TokenExchange>),
    /// The caller's own token as it is: issued for the destination already
    /// (forward-proxy clients ask Entra for Azure's audience themselves).
    Forward,
}

/// The identity chosen for one request.
#[derive(Clone, Copy, Debug)]
pub struct Selected<'a> {
    named: &'a Named,
    elevated: bool,
}

impl Selected<'_> {
    /// Its name (`default` for `[upstream.credential]`).
    pub fn name(&self) -> &str {
        &self.named.name
    }
    /// Whether an approval's elevation chose it.
    pub fn elevated(&self) -> bool {
        self.elevated
    }
    /// Whether it acts as the caller ([`UpstreamIdentities::with_on_behalf_of`],
    /// [`UpstreamIdentities::with_caller_token`]).
    pub fn on_behalf_of(&self) -> bool {
        matches!(self.named.tokens, Tokens::Caller(_) | Tokens::Forward)
    }

    /// A token for `audience`: the gateway's own, or the caller's (its
    /// [`CallerToken`] in `extensions`, exchanged).
    ///
    /// # Errors
    ///
    /// A `502 AirlockUpstreamCredential` naming the identity and why: the
    /// provider's or exchange's error, or no caller token to exchange (the
    /// identity layer keeps it only when told to): nothing is sent then.
    pub async fn token(
        &self,
        extensions: &http::Extensions,
        audience: &str,
    ) -> Result<AccessToken, AirlockError> {
        let failed = |e: &dyn std::fmt::Display| {
            AirlockError::UpstreamCredential(format!("upstream identity '{}': {e}", self.name()))
        };
        match &self.named.tokens {
            Tokens::Gateway(tokens) => tokens.token(audience).await.map_err(|e| failed(&e)),
            Tokens::Caller(exchange) => {
                let caller = caller_token(extensions).map_err(|e| failed(&e))?;
                exchange
                    .exchange(caller, audience)
                    .await
                    .map_err(|e| failed(&e))
            }
            Tokens::Forward => {
                let caller = caller_token(extensions).map_err(|e| failed(&e))?;
                let issued_for = extensions
                    .get::<Principal>()
                    .and_then(|p| p.raw_claims().get("aud"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                if issued_for.trim_end_matches('/') != audience.trim_end_matches('/') {
                    return Err(AirlockError::Forbidden {
                        code: "AirlockCallerTokenAudience",
                        message: format!(
                            "upstream identity '{}' forwards the caller's own token, which was issued for '{issued_for}', not for '{audience}', where this request goes; through the gateway's forward proxy, get a token for {audience} (as az and the Azure SDKs do when they reach Azure's own host names)",
                            self.name()
                        ),
                    });
                }
                Ok(AccessToken::new(caller.as_str(), None))
            }
        }
    }

    /// Azure refused `token` for `audience` (`401`): whether another token
    /// may be had for the request's one retry: the gateway's own, or one
    /// exchanged for the caller (its [`CallerToken`] in `extensions`). A
    /// caller's own token forwarded as it is is the caller's to renew.
    pub fn rejected(
        &self,
        extensions: &http::Extensions,
        audience: &str,
        token: &AccessToken,
    ) -> bool {
        match &self.named.tokens {
            Tokens::Gateway(tokens) => tokens.rejected(audience, token),
            Tokens::Caller(exchange) => caller_token(extensions)
                .is_ok_and(|caller| exchange.rejected(caller, audience, token)),
            Tokens::Forward => false,
        }
    }
}

impl UpstreamIdentities {
    /// Every request runs as `default`, until [`with`](Self::with) adds others.
    pub fn new(default: Arc<dyn TokenProvider>) -> Self {
        Self {
            named: Arc::new(vec![Named {
                name: DEFAULT_IDENTITY.to_owned(),
                serves: None,
                tokens: Tokens::Gateway(default),
            }]),
        }
    }

    /// Adds identity `name`, serving the principals `serves` selects (in
    /// the order added, before the default), or, with `None`, only
    /// requests an approval elevates to it.
    #[must_use]
    pub fn with(
        mut self,
        name: impl Into<String>,
        tokens: Arc<dyn TokenProvider>,
        serves: Option<PrincipalSelector>,
    ) -> Self {
        Arc::make_mut(&mut self.named).push(Named {
            name: name.into(),
            serves,
            tokens: Tokens::Gateway(tokens),
        });
        self
    }

    /// Adds identity `name` that acts as the caller: the principals `serves`
    /// selects reach Azure with their own token, exchanged by `exchange`
    /// (Entra's on-behalf-of grant), so that Azure applies their own roles.
    /// Never an elevation target ([`is_gateway_held`](Self::is_gateway_held)).
    #[must_use]
    pub fn with_on_behalf_of(
        mut self,
        name: impl Into<String>,
        exchange: Arc<dyn TokenExchange>,
        serves: PrincipalSelector,
    ) -> Self {
        Arc::make_mut(&mut self.named).push(Named {
            name: name.into(),
            serves: Some(serves),
            tokens: Tokens::Caller(exchange),
        });
        self
    }

    /// Adds identity `name` that forwards the caller's own token, unchanged,
    /// for the principals `serves` selects: for forward-proxy clients whose
    /// tokens are issued for Azure's audience already. A token issued for
    /// any other audience than the request's destination is refused (403
    /// `AirlockCallerTokenAudience`), never forwarded.
    #[must_use]
    pub fn with_caller_token(mut self, name: impl Into<String>, serves: PrincipalSelector) -> Self {
        Arc::make_mut(&mut self.named).push(Named {
            name: name.into(),
            serves: Some(serves),
            tokens: Tokens::Forward,
        });
        self
    }

    /// Whether an identity of this name exists and the gateway holds its
    /// credential (what `elevate_to` may name).
    pub fn is_gateway_held(&self, name: &str) -> bool {
        self.named
            .iter()
            .any(|n| n.name == name && matches!(n.tokens, Tokens::Gateway(_)))
    }

    /// Whether some identity acts as the caller, so that the identity layer
    /// must keep the caller's token.
    pub fn needs_caller_token(&self) -> bool {
        self.named
            .iter()
            .any(|n| matches!(n.tokens, Tokens::Caller(_) | Tokens::Forward))
    }

    /// Whether an identity of this name exists (`default` always does).
    pub fn contains(&self, name: &str) -> bool {
        self.named.iter().any(|n| n.name == name)
    }

    /// The names, the default first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.iter().map(|n| n.name.as_str())
    }

    /// The identity a request with these extensions runs as.
    ///
    /// # Errors
    ///
    /// A `502 AirlockUpstreamCredential` when an elevation names an identity
    /// that does not exist: the approved request is not sent as anyone else.
    pub fn select(&self, extensions: &http::Extensions) -> Result<Selected<'_>, AirlockError> {
        if let Some(elevation) = extensions.get::<Elevation>() {
            return self
                .named
                .iter()
                .find(|n| n.name == elevation.identity)
                .map(|named| Selected {
                    named,
                    elevated: true,
                })
                .ok_or_else(|| {
                    AirlockError::UpstreamCredential(format!(
                        "approval {} elevates to '{}', which is not an upstream identity of this gateway; add it to [[upstream.identities]] or fix the rule's elevate_to",
                        elevation.approval_id, elevation.identity
                    ))
                });
        }
        let principal = extensions.get::<Principal>();
        let named = principal
            .and_then(|principal| {
                self.named.iter().find(|n| {
                    n.serves
                        .as_ref()
                        .is_some_and(|selector| selector.matches(principal))
                })
            })
            .unwrap_or(&self.named[0]);
        Ok(Selected {
            named,
            elevated: false,
        })
    }
}

/// The caller's token the identity layer kept, or why there is none.
fn caller_token(extensions: &http::Extensions) -> Result<&CallerToken, &'static str> {
    extensions.get::<CallerToken>().ok_or(
        "it acts as the caller, but the request carries no caller token; keep it with IdentityLayer::keep_caller_token",
    )
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("serves", &self.serves)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpstreamIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::{PrincipalKind, StaticTokenProvider};

    fn provider(token: &str) -> Arc<dyn TokenProvider> {
        Arc::new(StaticTokenProvider::new(token))
    }

    fn identities() -> UpstreamIdentities {
        UpstreamIdentities::new(provider("d"))
            .with(
                "ops",
                provider("o"),
                Some(PrincipalSelector {
                    groups: vec!["ops".into()],
                    ..Default::default()
                }),
            )
            .with(
                "bots",
                provider("b"),
                Some(PrincipalSelector {
                    kinds: vec!["managed_identity".into()],
                    ..Default::default()
                }),
            )
            .with("admin", provider("a"), None)
    }

    fn with_principal(principal: Principal) -> http::Extensions {
        let mut extensions = http::Extensions::new();
        extensions.insert(principal);
        extensions
    }

    #[test]
    fn the_first_matching_identity_serves_and_the_default_catches_the_rest() {
        let ids = identities();
        let ops_bot = Principal::builder("x", PrincipalKind::ManagedIdentity)
            .groups(["ops"])
            .build();
        let bot = Principal::builder("y", PrincipalKind::ManagedIdentity).build();
        let person = Principal::builder("z", PrincipalKind::User).build();
        assert_eq!(ids.select(&with_principal(ops_bot)).unwrap().name(), "ops");
        assert_eq!(ids.select(&with_principal(bot)).unwrap().name(), "bots");
        let chosen = ids.select(&with_principal(person)).unwrap();
        assert_eq!((chosen.name(), chosen.elevated()), ("default", false));
        // No principal (an embedder without the identity layer): the default.
        assert_eq!(
            ids.select(&http::Extensions::new()).unwrap().name(),
            "default"
        );
    }

    #[test]
    fn an_elevation_target_serves_no_one_by_mapping() {
        let ids = identities();
        let anyone = Principal::builder("admin", PrincipalKind::User).build();
        assert_eq!(
            ids.select(&with_principal(anyone)).unwrap().name(),
            "default"
        );
    }

    #[test]
    fn an_elevation_to_an_unknown_identity_fails_closed() {
        let mut extensions = http::Extensions::new();
        extensions.insert(Elevation {
            identity: "root".into(),
            approval_id: "a-9".into(),
        });
        let error = identities().select(&extensions).err().unwrap();
        assert!(error.to_string().contains("'root'"), "{error}");
        assert!(error.to_string().contains("a-9"), "{error}");
    }

    /// Exchanges a caller token `c` for `c@audience`.
    struct Echo;
    impl TokenExchange for Echo {
        fn exchange<'a>(
            &'a self,
            caller: &'a CallerToken,
            audience: &'a str,
        ) -> airlock_core::BoxFuture<'a, Result<AccessToken, airlock_core::TokenError>> {
            let token = format!("{}@{audience}", caller.as_str());
            Box::pin(async move { Ok(AccessToken::new(token, None)) })
        }
    }

    #[tokio::test]
    async fn an_identity_acting_as_the_caller_exchanges_their_token_or_fails_closed() {
        let people = PrincipalSelector {
            kinds: vec!["user".into()],
            ..Default::default()
        };
        let ids = identities().with_on_behalf_of("as-caller", Arc::new(Echo), people);
        assert!(ids.needs_caller_token() && !identities().needs_caller_token());
        assert!(ids.is_gateway_held("admin") && !ids.is_gateway_held("as-caller"));
        let mut extensions = with_principal(Principal::builder("z", PrincipalKind::User).build());
        let chosen = ids.select(&extensions).unwrap();
        assert!(chosen.on_behalf_of());
        let error = chosen
            .token(&extensions, "https://management.azure.com")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no caller token"), "{error}");
        extensions.insert(CallerToken::new("alice-token"));
        let chosen = ids.select(&extensions).unwrap();
        let token = chosen
            .token(&extensions, "https://management.azure.com")
            .await
            .unwrap();
        assert_eq!(token.secret(), "alice-token@https://management.azure.com");
    }

    #[tokio::test]
    async fn a_forwarded_caller_token_goes_only_where_it_was_issued_for() {
        let people = PrincipalSelector {
            kinds: vec!["user".into()],
            ..Default::default()
        };
        let ids = identities().with_caller_token("as-caller", people);
        assert!(ids.needs_caller_token() && !ids.is_gateway_held("as-caller"));
        let for_arm = |aud: &str| {
            let mut claims = serde_json::Map::new();
            claims.insert("aud".into(), aud.into());
            let mut extensions = with_principal(
                Principal::builder("z", PrincipalKind::User)
                    .raw_claims(claims)
                    .build(),
            );
            extensions.insert(CallerToken::new("alice-arm-token"));
            extensions
        };
        let arm = "https://management.azure.com";
        let extensions = for_arm("https://management.azure.com/");
        let token = ids
            .select(&extensions)
            .unwrap()
            .token(&extensions, arm)
            .await
            .unwrap();
        assert_eq!(token.secret(), "alice-arm-token");
        let extensions = for_arm("api://airlock");
        let refused = ids
            .select(&extensions)
            .unwrap()
            .token(&extensions, arm)
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("issued for 'api://airlock', not for 'https://management.azure.com'"),
            "{refused}"
        );
    }
}
