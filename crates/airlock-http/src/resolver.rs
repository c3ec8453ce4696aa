//! [`LocalhostResolver`]: DNS, except that `.localhost` is always loopback.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower::Service;

/// The system resolver, except that `localhost` and every name under
/// `.localhost` resolve to the loopback address without asking DNS (RFC 6761
/// §6.3). Local Azure doubles serve vaults as `{vault}.vault.localhost`.
#[derive(Clone, Debug)]
pub struct LocalhostResolver {
    system: GaiResolver,
}

impl Default for LocalhostResolver {
    fn default() -> Self {
        Self {
            system: GaiResolver::new(),
        }
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl Service<Name> for LocalhostResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.system.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            let loopback = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))];
            return Box::pin(async move { Ok(loopback.into_iter()) });
        }
        let lookup = self.system.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn localhost_subdomains_resolve_to_loopback() {
        let mut resolver = LocalhostResolver::default();
        for name in ["localhost", "demo-vault.vault.localhost", "X.LOCALHOST."] {
            let addrs: Vec<_> = resolver
                .call(Name::from_str(name).unwrap())
                .await
                .unwrap()
                .collect();
            assert_eq!(
                addrs,
                [SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
                "{name}"
            );
        }
    }
}
