//! [`ApprovalsClient`]: the HTTPS client for the approvals API, the checks on
//! what it is given (admin URL, token, CA file, approval id), and the mapping
//! of transport failures and API errors to [`CliError`]s.

use std::fmt;
use std::path::Path;

use std::time::Duration;

use airlock_core::collect_limited;
use airlock_http::{ClientBuilder, ClientError, PooledClient, TrustRoots};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::Full;
use serde_json::Value;

use super::render::clean;
use super::{CliError, DEFAULT_ADMIN_URL, ListState, Token};

/// The API's path under the admin URL.
const API_PATH: &str = "/api/approvals";
/// The largest answer read (a long list of approvals).
const MAX_RESPONSE_BYTES: u64 = 16 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the approvals API of one gateway.
#[derive(Clone)]
pub struct ApprovalsClient {
    client: PooledClient,
    base: String,
    token: Token,
}

impl fmt::Debug for ApprovalsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApprovalsClient {
    /// A client for the admin listener at `admin_url`, sending `token`,
    /// trusting the system roots and the certificates in `ca_file`.
    ///
    /// Plain `http://` is accepted only for loopback addresses: the token
    /// must not cross a network in clear text.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] when the URL, the token or the CA file is unusable.
    pub fn new(admin_url: &str, token: &str, ca_file: Option<&Path>) -> Result<Self, CliError> {
        let base = check_admin_url(admin_url)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(CliError::Usage(
                "no token: set AIRLOCK_TOKEN (or pass --token) to your Entra access token for the gateway, e.g. from `az account get-access-token --resource <the gateway's audience> --query accessToken -o tsv`".into(),
            ));
        }
        let client = ClientBuilder::new(TrustRoots::system().with_optional_ca_file(ca_file))
            .allow_http(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(client_error)?;
        Ok(Self {
            client,
            base,
            token: Token::new(token),
        })
    }

    /// `GET /api/approvals[?state=…]`: the API's `{"value": [...]}`.
    ///
    /// # Errors
    ///
    /// [`CliError::Api`] when the API refuses, [`CliError::Transport`] when it cannot be reached.
    pub async fn list(&self, state: ListState) -> Result<Value, CliError> {
        let path = match state {
            ListState::All => API_PATH.to_owned(),
            state => format!("{API_PATH}?state={}", state.as_str()),
        };
        self.send(Method::GET, &path, None).await
    }

    /// `GET /api/approvals/{id}`.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] for an id that is not a UUID; else as [`list`](Self::list).
    pub async fn show(&self, id: &str) -> Result<Value, CliError> {
        let id = approval_id(id)?;
        self.send(Method::GET, &format!("{API_PATH}/{id}"), None)
            .await
    }

    /// `GET /api/approvals/{id}/body`: the request's whole body, masked.
    ///
    /// # Errors
    ///
    /// As [`show`](Self::show).
    pub async fn body(&self, id: &str) -> Result<String, CliError> {
        let id = approval_id(id)?;
        let url = format!("{}{API_PATH}/{id}/body", self.base);
        let (status, body) = self
            .exchange(Method::GET, &format!("{API_PATH}/{id}/body"), None)
            .await?;
        if status.is_success() {
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        Err(api_error(status.as_u16(), json.as_ref(), &body, &url))
    }

    /// `POST /api/approvals/{id}/approve` or `…/deny`, with the comment if any:
    /// the approval as it now stands.
    ///
    /// # Errors
    ///
    /// As [`show`](Self::show).
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Value, CliError> {
        let id = approval_id(id)?;
        let action = if approve { "approve" } else { "deny" };
        let body = serde_json::json!({ "comment": comment }).to_string();
        self.send(
            Method::POST,
            &format!("{API_PATH}/{id}/{action}"),
            Some(Bytes::from(body)),
        )
        .await
    }

    /// Sends one request; the answer's JSON, or the API's refusal.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let (status, body) = self.exchange(method, path, body).await?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| CliError::Transport {
                url: url.clone(),
                detail: "the answer is not JSON".into(),
                hint:
                    "check that --admin-url names the gateway's admin listener, not another service"
                        .into(),
            });
        }
        Err(api_error(status.as_u16(), json.as_ref(), &body, &url))
    }

    /// Sends one request and reads the answer, within the timeouts.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(http::StatusCode, Bytes), CliError> {
        let url = format!("{}{path}", self.base);
        let transport = |detail: String, hint: &str| CliError::Transport {
            url: url.clone(),
            detail,
            hint: hint.to_owned(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("airlock-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header(AUTHORIZATION, format!("Bearer {}", self.token.0));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| {
                CliError::Usage(format!(
                    "cannot build a request to {url}: check --admin-url, and that the token is one line of text"
                ))
            })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport_error(&url, &e))?;
            let (parts, body) = response.into_parts();
            let body = collect_limited(body, &parts.headers, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| {
                    transport(
                        format!("reading the answer failed: {e}"),
                        "retry; if it persists, check the gateway's logs",
                    )
                })?;
            Ok::<_, CliError>((parts.status, body))
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                transport(
                    format!("no answer within {EXCHANGE_TIMEOUT:?}"),
                    "check that --admin-url names the gateway's admin listener and that it is healthy",
                )
            })?
    }
}

/// Checks the admin URL: absolute, https (or http to loopback), no query.
fn check_admin_url(admin_url: &str) -> Result<String, CliError> {
    let usage = |why: &str| {
        CliError::Usage(format!(
            "--admin-url '{admin_url}' {why}; give the gateway's admin listener, e.g. {DEFAULT_ADMIN_URL}"
        ))
    };
    let uri: Uri = admin_url
        .trim()
        .parse()
        .map_err(|_| usage("is not a URL"))?;
    let Some(host) = uri.host() else {
        return Err(usage("has no host"));
    };
    if uri.query().is_some() {
        return Err(usage("must not have a query"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(usage(
                    "is plain http to another machine, which would send your token in clear text; use https://",
                ));
            }
        }
        _ => return Err(usage("must start with https://")),
    }
    Ok(admin_url.trim().trim_end_matches('/').to_owned())
}

/// What is wrong with `--ca-file`, or the machine's trust store, in CLI terms.
fn client_error(error: ClientError) -> CliError {
    match error {
        ClientError::NoRoots => CliError::Usage(
            "no trusted root certificates: the system store is empty; pass --ca-file".into(),
        ),
        ClientError::Ca { origin, reason } => CliError::Usage(format!(
            "--ca-file {origin}: {reason}; give a PEM file of CA certificates"
        )),
        ClientError::Tls(reason) => CliError::Usage(format!("TLS cannot be set up: {reason}")),
    }
}

/// The id as a UUID, so that it cannot change the path it is put in.
fn approval_id(id: &str) -> Result<uuid::Uuid, CliError> {
    uuid::Uuid::parse_str(id.trim()).map_err(|_| {
        CliError::Usage(format!(
            "'{}' is not an approval id; an approval id is a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e, as `airlock approvals list` shows it",
            clean(id)
        ))
    })
}

/// A transport failure, with a hint for the usual causes.
fn transport_error(url: &str, error: &(dyn std::error::Error + 'static)) -> CliError {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = detail.to_ascii_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
        "the gateway's TLS certificate is not trusted: pass --ca-file with the CA that signed it (the demo writes its ca.pem)"
    } else if lower.contains("connection refused") {
        "nothing listens there: is the gateway running with its admin listener? Set --admin-url or AIRLOCK_ADMIN_URL to its address"
    } else if lower.contains("dns") || lower.contains("lookup") {
        "the host name does not resolve: check --admin-url or AIRLOCK_ADMIN_URL"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "no connection within the timeout: check --admin-url and that no firewall is in the way"
    } else {
        "check --admin-url (or AIRLOCK_ADMIN_URL) and that the gateway's admin listener is up"
    };
    CliError::Transport {
        url: url.to_owned(),
        detail,
        hint: hint.to_owned(),
    }
}

/// The ARM error in an answer, or what is known without one.
fn api_error(status: u16, json: Option<&Value>, body: &[u8], url: &str) -> CliError {
    let error = json.and_then(|j| j.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(clean);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(clean);
    match (code, message) {
        (Some(code), Some(message)) => CliError::Api {
            status,
            code,
            message,
        },
        (code, _) => {
            let text: String = clean(&String::from_utf8_lossy(body))
                .chars()
                .take(200)
                .collect();
            CliError::Api {
                status,
                code: code.unwrap_or_else(|| format!("HTTP{status}")),
                message: format!(
                    "{url} answered without an Airlock error{}; check that --admin-url names the gateway's admin listener",
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", text.trim())
                    }
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn api_errors_carry_the_arm_code_and_exit_2_for_refusals() {
        let body = serde_json::json!({"error": {"code": "AirlockSelfApproval", "message": "the requester can never approve"}});
        let error = api_error(403, Some(&body), b"", "https://gw/api/approvals/x/approve");
        assert_eq!(
            error.to_string(),
            "AirlockSelfApproval (403): the requester can never approve"
        );
        assert_eq!(error.exit_code(), 2);
        let error = api_error(500, None, b"<html>oops</html>", "https://gw/api/approvals");
        assert_eq!(error.exit_code(), 1);
        let text = error.to_string();
        assert!(
            text.starts_with("HTTP500 (500): https://gw/api/approvals answered without an Airlock error (<html>oops</html>)"),
            "{text}"
        );
    }

    #[test]
    fn unusable_command_lines_are_refused_before_sending_anything() {
        let usage = |result: Result<ApprovalsClient, CliError>| match result {
            Err(CliError::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        };
        let message = usage(ApprovalsClient::new(
            "http://gateway.example:8444",
            "t",
            None,
        ));
        assert!(
            message.contains("clear text") && message.contains("https://"),
            "{message}"
        );
        let message = usage(ApprovalsClient::new("localhost:8444", "t", None));
        assert!(message.contains(DEFAULT_ADMIN_URL), "{message}");
        let message = usage(ApprovalsClient::new(DEFAULT_ADMIN_URL, " ", None));
        assert!(message.contains("AIRLOCK_TOKEN"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "").unwrap();
        let message = usage(ApprovalsClient::new(DEFAULT_ADMIN_URL, "t", Some(&empty)));
        assert!(
            message.contains("--ca-file") && message.contains("no PEM"),
            "{message}"
        );

        assert!(ApprovalsClient::new("http://127.0.0.1:8444/", "t", None).is_ok());
        let client =
            ApprovalsClient::new("https://gw.example/admin/", "secret-token", None).unwrap();
        assert_eq!(client.base, "https://gw.example/admin");
        assert!(!format!("{client:?}").contains("secret-token"));

        let message = match approval_id("../../policy") {
            Err(CliError::Usage(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(message.contains("is not an approval id"), "{message}");
        assert!(approval_id(ID).is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_transport_error_naming_the_url_and_the_fix() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://127.0.0.1:{port}");
        let client = ApprovalsClient::new(&url, "t", None).unwrap();
        let error = client.list(ListState::Pending).await.unwrap_err();
        assert_eq!(error.exit_code(), 1);
        let text = error.to_string();
        assert!(
            text.contains(&format!("cannot reach {url}/api/approvals?state=pending"))
                && text.contains("hint:")
                && text.contains("--admin-url"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_untrusted_certificate_suggests_ca_file() {
        use tokio::io::AsyncWriteExt;

        let dir = tempfile::tempdir().unwrap();
        let certs = airlock_demo::DevCertificates::generate(&["localhost"]).unwrap();
        certs.write_to(dir.path()).unwrap();
        let mut config = airlock_gateway::tls::server_config(
            &dir.path().join("cert.pem"),
            &dir.path().join("key.pem"),
        )
        .unwrap()
        .as_ref()
        .clone();
        // The hand-written answer below is HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = std::sync::Arc::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            // Two connections: without, then with the CA.
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let body = r#"{"value":[]}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let mut request = [0u8; 4096];
                    let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut request).await;
                    tls.write_all(response.as_bytes()).await.unwrap();
                    tls.shutdown().await.unwrap();
                }
            }
        });
        let url = format!("https://localhost:{port}");
        let error = ApprovalsClient::new(&url, "t", None)
            .unwrap()
            .list(ListState::All)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("--ca-file"), "{text}");
        let trusted = ApprovalsClient::new(&url, "t", Some(&dir.path().join("ca.pem"))).unwrap();
        let value = trusted.list(ListState::All).await.unwrap();
        assert_eq!(value, serde_json::json!({"value": []}));
        server.await.unwrap();
    }
}
