//! Forward-proxy mode (issue 15): a client that knows only `HTTPS_PROXY` and
//! a CA reaches Azure's real host names through the gateway, which
//! terminates TLS with certificates it mints, runs every request inside the
//! tunnel through the whole stack, and forwards to the simulated Azure.
//! curl is the real client: through an HTTP proxy it sends `CONNECT
//! management.azure.com:443` and never resolves Azure's names itself, so
//! nothing reaches the real Azure.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_sim::{SECRET_VALUE, SUBSCRIPTION_ID, VAULT};
use airlock_tests::{Harness, Options, eventually};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `[forward_proxy]` with a fresh CA in `dir`; sign-in tunnelled to `login`;
/// `more` appended to the table.
fn forward_proxy_toml(dir: &Path, login: SocketAddr, more: &str) -> String {
    let (cert, key) = airlock_gateway::generate_ca("Airlock test proxy CA").unwrap();
    std::fs::write(dir.join("proxy-ca.pem"), cert).unwrap();
    let key_file = dir.join("proxy-ca-key.pem");
    std::fs::write(&key_file, key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    format!(
        "[forward_proxy]\nenabled = true\nca_cert_file = \"{}\"\nca_key_file = \"{}\"\nresolve = {{ \"login.microsoftonline.com\" = \"{login}\" }}\n{more}\n",
        dir.join("proxy-ca.pem").display(),
        key_file.display()
    )
}

struct Proxied {
    h: Harness,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

/// A gateway in forward-proxy mode; `login` is where sign-in is tunnelled.
async fn start(login: SocketAddr) -> Proxied {
    start_with(login, false, "").await
}

/// The same; with `tls`, the listener (and so the proxy itself) speaks TLS;
/// `more` goes into `[forward_proxy]`.
async fn start_with(login: SocketAddr, tls: bool, more: &str) -> Proxied {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(Options {
        tls,
        extra_toml: forward_proxy_toml(dir.path(), login, more),
        // What tools reaching Azure's own hosts ask Entra for.
        audiences: vec![
            "https://management.azure.com".into(),
            "https://vault.azure.net".into(),
        ],
        policy: Some(POLICY.into()),
        ..Options::default()
    })
    .await;
    Proxied {
        h,
        ca: dir.path().join("proxy-ca.pem"),
        _dir: dir,
    }
}

impl Proxied {
    /// curl through the gateway as its proxy, with the agent's token: the
    /// status code and the body (stderr appended, for messages).
    async fn curl(&self, extra: &[&str], url: &str) -> (u16, String) {
        let authorization = format!("Authorization: Bearer {}", self.h.agent_token);
        self.curl_with(&[&["-H", &authorization], extra].concat(), url)
            .await
    }

    /// The same, with only the arguments in `extra` (no token of its own).
    async fn curl_with(&self, extra: &[&str], url: &str) -> (u16, String) {
        let proxy = match &self.h.ca_pem {
            // TLS to the proxy itself (`HTTPS_PROXY=https://…`), trusting the listener's CA.
            Some(listener_ca) => {
                let file = self.h.dir.path().join("listener-ca.pem");
                std::fs::write(&file, listener_ca).unwrap();
                vec![
                    "--proxy".to_owned(),
                    format!("https://localhost:{}", self.h.gateway.local_addr().port()),
                    "--proxy-cacert".to_owned(),
                    file.display().to_string(),
                ]
            }
            None => vec![
                "--proxy".to_owned(),
                format!("http://{}", self.h.gateway.local_addr()),
            ],
        };
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(&proxy)
            .args(["--cacert", self.ca.to_str().unwrap()])
            .args(extra)
            .arg(url)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (
            code.trim().parse().unwrap_or(0),
            format!("{body}{}", String::from_utf8_lossy(&output.stderr)),
        )
    }

    /// A raw `CONNECT`: the status line, and the stream after the head.
    async fn connect(&self, target: &str) -> (String, TcpStream) {
        self.connect_with(target, "").await
    }

    /// The same, with `headers` (each ending in CRLF).
    async fn connect_with(&self, target: &str, headers: &str) -> (String, TcpStream) {
        let mut stream = TcpStream::connect(self.h.gateway.local_addr())
            .await
            .unwrap();
        stream
            .write_all(
                format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{headers}\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = tokio::time::timeout(Duration::from_secs(10), stream.read_u8())
                .await
                .unwrap();
            match byte {
                Ok(byte) => head.push(byte),
                Err(_) => break,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        (head.lines().next().unwrap_or_default().to_owned(), stream)
    }
}

/// Reads anything and Key Vault secrets; deleting a resource group is blocked.
const POLICY: &str = r#"
[[rule]]
name = "reads"
effect = "allow"
actions = ["*/read"]
data_actions = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]

[[rule]]
name = "no-group-deletes"
effect = "deny"
actions = ["Microsoft.Resources/subscriptions/resourceGroups/delete"]
reason = "resource groups are deleted by people"
"#;

fn groups_url() -> String {
    format!(
        "https://management.azure.com/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01"
    )
}

#[tokio::test]
async fn curl_reaches_arm_and_key_vault_by_their_real_names_through_the_whole_stack() {
    let p = start("127.0.0.1:9".parse().unwrap()).await;
    for version in ["--http2", "--http1.1"] {
        let (status, body) = p.curl(&[version], &groups_url()).await;
        assert_eq!(status, 200, "{version}: {body}");
        assert!(body.contains("demo-rg"), "{body}");
    }
    // Key Vault under its real host name: the secret comes back masked.
    let secret = format!(
        "https://{VAULT}.vault.azure.net/secrets/{}?api-version=7.4",
        airlock_sim::SECRET_NAME
    );
    let (status, body) = p.curl(&[], &secret).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains(SECRET_VALUE) && body.contains("***MASKED:"),
        "{body}"
    );
    // Paging: nextLink names Azure's own host, as the client addressed it,
    // so following it goes back through the proxy.
    let mut url = format!(
        "https://management.azure.com/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"
    );
    let mut pages = 0;
    loop {
        let (status, body) = p.curl(&[], &url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        match page["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with("https://management.azure.com/"), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert!(pages > 1, "the simulated Azure pages this list");
    // What the simulated Azure got: the gateway's token, never the agent's.
    let received = p.h.sim.requests();
    assert_eq!(received.len(), 3 + pages);
    for request in &received {
        let authorization = request.headers["authorization"].to_str().unwrap();
        assert!(!authorization.contains(&p.h.agent_token));
    }
    // Every request inside the tunnels was recorded with its real host, and so were the CONNECTs.
    let trail = p.h.audit_trail().await;
    let hosts: Vec<(&str, Option<&str>, u16)> = trail
        .iter()
        .map(|e| {
            (
                e.event.method.as_str(),
                e.event.host.as_deref(),
                e.event.status,
            )
        })
        .collect();
    assert!(
        hosts.contains(&("GET", Some("management.azure.com"), 200))
            && hosts.contains(&("CONNECT", Some("management.azure.com:443"), 200)),
        "{hosts:?}"
    );
    p.h.shutdown().await;
}

/// An approval that waits as an operation, asked through the proxy: the
/// 202's operation URLs name the Azure host the client tunnelled to (a
/// proxy client cannot reach the gateway's own name through it), and
/// following them through the proxy gets the approved request's answer,
/// masked.
#[tokio::test]
async fn an_async_approval_is_followed_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(Options {
        extra_toml: forward_proxy_toml(dir.path(), "127.0.0.1:9".parse().unwrap(), ""),
        audiences: vec!["https://management.azure.com".into()],
        policy: Some(format!(
            "{POLICY}\n[[rule]]\nname = \"list-keys-waits\"\neffect = \"approve\"\nactions = [\"Microsoft.Storage/storageAccounts/listKeys/action\"]\n[rule.approval]\ngroups = [\"{}\"]\nwait = \"async\"\n",
            airlock_sim::APPROVERS_GROUP
        )),
        ..Options::default()
    })
    .await;
    let p = Proxied {
        h,
        ca: dir.path().join("proxy-ca.pem"),
        _dir: dir,
    };
    let list_keys = format!(
        "https://management.azure.com{}/providers/Microsoft.Storage/storageAccounts/{}/listKeys?api-version=2023-05-01",
        airlock_tests::rg_path(),
        airlock_sim::STORAGE_ACCOUNT
    );
    let header = |answer: &str, name: &str| {
        answer
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
    };
    let (status, answer) = p
        .curl(&["-i", "-X", "POST", "-H", "Content-Length: 0"], &list_keys)
        .await;
    assert_eq!(status, 202, "{answer}");
    let operation = header(&answer, "azure-asyncoperation");
    let location = header(&answer, "location");
    assert!(
        operation.starts_with("https://management.azure.com/airlock/operations/"),
        "{operation}"
    );
    assert_eq!(location, format!("{operation}/result"));
    let approval = crate::approval::pending(&p.h, 1).await.remove(0);
    crate::approval::decide(&p.h, approval["id"].as_str().unwrap(), "approve", "ok").await;
    // Followed as an SDK follows it, through the proxy: the status, then
    // the result.
    let (proxied, url) = (&p, operation.as_str());
    let status = eventually(
        "the operation succeeds",
        Duration::from_secs(30),
        || async move {
            let (code, body) = proxied.curl(&[], url).await;
            (code == 200 && body.contains("Succeeded")).then_some(body)
        },
    )
    .await;
    assert!(status.contains("\"status\""), "{status}");
    let (code, result) = p.curl(&[], &location).await;
    assert_eq!(code, 200, "{result}");
    let keys: serde_json::Value = serde_json::from_str(&result).unwrap();
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(
            airlock_masking::is_masked_token(key["value"].as_str().unwrap()),
            "{key}"
        );
    }
    p.h.shutdown().await;
}

/// `HTTPS_PROXY=https://…`: the CONNECT itself (and a token on it) travels
/// encrypted; the tunnel inside is TLS to the minted certificate as before.
#[tokio::test]
async fn the_proxy_itself_can_be_reached_over_tls() {
    let p = start_with("127.0.0.1:9".parse().unwrap(), true, "").await;
    let (status, body) = p.curl(&[], &groups_url()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("demo-rg"), "{body}");
    p.h.shutdown().await;
}

#[tokio::test]
async fn only_azure_hosts_on_443_are_tunnelled_and_each_refusal_is_recorded() {
    let p = start("127.0.0.1:9".parse().unwrap()).await;
    for target in [
        "evil.example:443",
        "management.azure.com:22",
        "127.0.0.1:443",
        "localhost:443",
        "other-vault.vault.azure.net:443",
        "169.254.169.254:80",
    ] {
        let (status, _) = p.connect(target).await;
        assert!(status.contains(" 403 "), "{target}: {status}");
    }
    // curl sees the refusal too, and nothing reached the simulated Azure.
    let (status, body) = p.curl(&[], "https://evil.example/").await;
    assert_ne!(status, 200, "{body}");
    assert!(p.h.sim.requests().is_empty());
    let trail = p.h.audit_trail().await;
    let refused = trail
        .iter()
        .filter(|e| e.event.method == "CONNECT" && e.event.status == 403)
        .count();
    assert_eq!(refused, 7, "every refused CONNECT is recorded");
    p.h.shutdown().await;
}

#[tokio::test]
async fn inside_a_tunnel_every_request_must_be_for_its_host() {
    let p = start("127.0.0.1:9".parse().unwrap()).await;
    // Inner Host disagreeing with the CONNECT target: 421, nothing sent.
    let (status, body) = p
        .curl(
            &["--http1.1", "-H", &format!("Host: {VAULT}.vault.azure.net")],
            &groups_url(),
        )
        .await;
    assert_eq!(status, 421, "{body}");
    // TLS naming another host than the CONNECT target: no certificate, no tunnel.
    let (status, stream) = p.connect("management.azure.com:443").await;
    assert!(status.contains(" 200 "), "{status}");
    let ca = std::fs::read(&p.ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("kv1.vault.azure.net").unwrap();
    let handshake = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, stream)
        .await;
    assert!(
        handshake.is_err(),
        "a certificate was offered for another host"
    );
    assert!(p.h.sim.requests().is_empty());
    p.h.shutdown().await;
}

/// A tunnel keeps the place of the connection it took over: tunnels cannot
/// be used to open more connections than `[limits]` allows.
#[tokio::test]
async fn tunnels_count_against_the_connection_limits() {
    let p = start_with(
        "127.0.0.1:9".parse().unwrap(),
        false,
        "[limits]\nmax_connections_per_client = 2",
    )
    .await;
    let (first, first_stream) = p.connect("management.azure.com:443").await;
    let (second, second_stream) = p.connect("management.azure.com:443").await;
    assert!(
        first.contains(" 200 ") && second.contains(" 200 "),
        "{first} {second}"
    );
    let (third, _) = p.connect("management.azure.com:443").await;
    assert_eq!(
        third, "",
        "a third connection was served while two tunnels were open"
    );
    // A tunnel closes: its place is free again.
    drop(first_stream);
    eventually(
        "a place freed after a tunnel closed",
        Duration::from_secs(10),
        || async {
            let (status, stream) = p.connect("management.azure.com:443").await;
            status.contains(" 200 ").then_some(stream)
        },
    )
    .await;
    // Shutting down waits for open tunnels (up to their TLS handshake's timeout).
    drop(second_stream);
    p.h.shutdown().await;
}

/// Shutting down waits for the requests inside open tunnels: one in flight
/// completes, and is recorded, before the gateway stops.
#[tokio::test]
async fn shutdown_drains_requests_inside_tunnels() {
    let p = start("127.0.0.1:9".parse().unwrap()).await;
    p.h.sim.set_response_delay(Duration::from_millis(500));
    let client = airlock_demo::AgentClient::through_proxy(
        "https://management.azure.com",
        &format!("http://{}", p.h.gateway.local_addr()),
        &[&std::fs::read_to_string(&p.ca).unwrap()],
        &p.h.agent_token,
    )
    .unwrap();
    let path = format!("/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01");
    let in_flight = tokio::spawn(async move { client.get(&path).await });
    eventually(
        "the request reaching Azure",
        Duration::from_secs(10),
        || async { (!p.h.sim.requests().is_empty()).then_some(()) },
    )
    .await;
    let Proxied { h, ca: _ca, _dir } = p;
    let database = h.database.clone();
    h.gateway.shutdown().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(
        response.status, 200,
        "the request in the tunnel must complete"
    );
    // And it was recorded before the recorder stopped.
    let store = airlock_store::SqliteStore::open(&database).await.unwrap();
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    let mut recorded = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        recorded.extend(page);
    }
    assert!(recorded.iter().any(|e| e.event.method == "GET"
        && e.event.host.as_deref() == Some("management.azure.com")
        && e.event.status == 200));
    h.sim.shutdown().await;
    h.issuer.shutdown().await;
}

/// What the client sends the sign-in host: the start of a TLS ClientHello.
const HELLO: &[u8] = b"\x16\x03\x01 not read by the gateway";

#[tokio::test]
async fn sign_in_hosts_are_tunnelled_blind() {
    // Stands in for login.microsoftonline.com: it echoes what it gets.
    let login = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let login_addr = login.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = login.accept().await.unwrap();
        let mut buffer = [0u8; HELLO.len()];
        socket.read_exact(&mut buffer).await.unwrap();
        socket.write_all(&buffer).await.unwrap();
    });
    let p = start(login_addr).await;
    let (status, mut stream) = p.connect("login.microsoftonline.com:443").await;
    assert!(status.contains(" 200 "), "{status}");
    stream.write_all(HELLO).await.unwrap();
    let mut echoed = [0u8; HELLO.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, HELLO);
    drop(stream);
    // Recorded when the tunnel closes: host and byte counts, nothing read.
    let event = eventually(
        "the closed tunnel's event",
        Duration::from_secs(10),
        || async {
            p.h.audit_trail()
                .await
                .into_iter()
                .find(|e| e.event.host.as_deref() == Some("login.microsoftonline.com:443"))
                .map(|e| e.event)
        },
    )
    .await;
    assert_eq!((event.method.as_str(), event.status), ("CONNECT", 200));
    assert_eq!(
        (event.bytes_in, event.bytes_out),
        (HELLO.len() as u64, HELLO.len() as u64)
    );
    assert!(event.principal.is_none() && event.request_body.is_none());
    p.h.shutdown().await;
}

/// `tests/python/{script}` on the Python `cargo xtask ci` installs into
/// `target/ci-cache/python`, with `proxy` as `HTTPS_PROXY` and `bundle` as
/// the CAs it trusts (and no `NO_PROXY` to get around it).
fn python_script(script: &str, proxy: &str, bundle: &Path) -> tokio::process::Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("target/ci-cache/python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask ci` (its test-tools step installs tests/python/requirements.txt)",
        python.display()
    );
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(root.join("tests/python").join(script))
        .env("HTTPS_PROXY", proxy)
        .env("REQUESTS_CA_BUNDLE", bundle)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    command
}

/// The Python Azure SDK, unchanged, through `proxy` (`HTTPS_PROXY`), its
/// credential answering `token` for every scope: what it saw
/// (`tests/python/sdk_through_proxy.py`; `cargo xtask ci` installs the SDK
/// into `target/ci-cache/python`).
async fn python_sdk(p: &Proxied, proxy: &str, token: &str) -> serde_json::Value {
    // With TLS to the proxy, one bundle trusts the listener and the proxy CA.
    let bundle = match &p.h.ca_pem {
        Some(listener_ca) => {
            let file = p.h.dir.path().join("bundle.pem");
            let proxy_ca = std::fs::read_to_string(&p.ca).unwrap();
            std::fs::write(&file, format!("{listener_ca}\n{proxy_ca}")).unwrap();
            file
        }
        None => p.ca.clone(),
    };
    let output = python_script("sdk_through_proxy.py", proxy, &bundle)
        .env("AIRLOCK_AGENT_TOKEN", token)
        .env("AIRLOCK_SUBSCRIPTION", SUBSCRIPTION_ID)
        .env("AIRLOCK_VAULT", VAULT)
        .env("AIRLOCK_SECRET", airlock_sim::SECRET_NAME)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["groups"], serde_json::json!(["demo-rg"]), "{seen}");
    assert!(
        seen["secret"].as_str().unwrap().starts_with("***MASKED:"),
        "{seen}"
    );
    assert_eq!(seen["delete"]["status"], 403, "{seen}");
    assert_eq!(seen["delete"]["code"], "AirlockPolicyDenied", "{seen}");
    assert!(
        seen["delete"]["message"]
            .as_str()
            .unwrap()
            .contains("no-group-deletes"),
        "{seen}"
    );
    // What the simulated Azure got: the read and the secret, never the delete.
    let received = p.h.sim.requests();
    assert!(received.iter().all(|r| r.method != http::Method::DELETE));
    assert!(received.iter().any(|r| r.uri.path().contains("/secrets/")));
    seen
}

/// With only `HTTPS_PROXY` and `REQUESTS_CA_BUNDLE`: it lists groups, reads
/// a secret (masked) and has a delete refused with the rule's name.
#[tokio::test]
async fn the_python_azure_sdk_works_unchanged_through_the_proxy() {
    let p = start("127.0.0.1:9".parse().unwrap()).await;
    let proxy = format!("http://{}", p.h.gateway.local_addr());
    let seen = python_sdk(&p, &proxy, &p.h.agent_token).await;
    // Key Vault's challenge named Azure's own vault audience, so the SDK
    // asked for it (and accepted the challenge for the real vault host).
    assert_eq!(
        seen["scopes"],
        serde_json::json!([
            "https://management.azure.com/.default",
            "https://vault.azure.net/.default"
        ])
    );
    p.h.shutdown().await;
}

/// `proxy_auth = "required"`: the agent's token rides in the proxy URL
/// (`HTTPS_PROXY=http://agent:<token>@…`, sent as Basic on every `CONNECT`)
/// and identifies every request in the tunnel; the SDK's own credential
/// holds nothing a gateway would accept.
#[tokio::test]
async fn the_python_sdk_is_identified_by_its_proxy_url_alone() {
    let p = start_with(
        "127.0.0.1:9".parse().unwrap(),
        false,
        "proxy_auth = \"required\"",
    )
    .await;
    let proxy = format!(
        "http://agent:{}@{}",
        p.h.agent_token,
        p.h.gateway.local_addr()
    );
    python_sdk(&p, &proxy, "not-a-token").await;
    let trail = p.h.audit_trail().await;
    let agent = "00000000-0000-0000-0000-0000000000a1";
    assert!(
        trail
            .iter()
            .filter(|e| e.event.method != "CONNECT")
            .all(|e| e.event.principal.as_ref().is_some_and(|p| p.id == agent)),
        "every request in the tunnels ran as the proxy URL's agent"
    );
    assert!(trail.iter().any(|e| e.event.method == "CONNECT"
        && e.event.status == 200
        && e.event.principal.as_ref().is_some_and(|p| p.id == agent)));
    p.h.shutdown().await;
}

/// `HTTPS_PROXY=https://…`: urllib3 speaks TLS to the proxy, and TLS to
/// the minted certificate inside it; the token in the proxy URL never
/// travels in clear.
#[tokio::test]
async fn the_python_sdk_reaches_the_proxy_over_tls() {
    let p = start_with(
        "127.0.0.1:9".parse().unwrap(),
        true,
        "proxy_auth = \"required\"",
    )
    .await;
    let proxy = format!(
        "https://agent:{}@localhost:{}",
        p.h.agent_token,
        p.h.gateway.local_addr().port()
    );
    python_sdk(&p, &proxy, "not-a-token").await;
    p.h.shutdown().await;
}

#[tokio::test]
async fn a_required_proxy_token_is_checked_at_the_connect() {
    let p = start_with(
        "127.0.0.1:9".parse().unwrap(),
        false,
        "proxy_auth = \"required\"",
    )
    .await;
    // No token, or a wrong one: 407 before a byte is tunnelled, sign-in included.
    for (target, headers) in [
        ("management.azure.com:443", String::new()),
        ("login.microsoftonline.com:443", String::new()),
        (
            "management.azure.com:443",
            "Proxy-Authorization: Bearer not.a.token\r\n".to_owned(),
        ),
    ] {
        let (status, _) = p.connect_with(target, &headers).await;
        assert!(status.contains(" 407 "), "{target} {headers:?}: {status}");
    }
    let (status, body) = p.curl(&[], &groups_url()).await;
    assert_eq!(status, 0, "curl got through without a proxy token: {body}");
    assert!(body.contains("407"), "{body}");
    // The token as Bearer (curl --proxy-header) or as the proxy password
    // (--proxy-user, sent as Basic); the request inside carries none.
    let bearer = format!("Proxy-Authorization: Bearer {}", p.h.agent_token);
    let user = format!("agent:{}", p.h.agent_token);
    for extra in [
        ["--proxy-header", bearer.as_str()],
        ["--proxy-user", user.as_str()],
    ] {
        let (status, body) = p.curl_with(&extra, &groups_url()).await;
        assert_eq!(status, 200, "{extra:?}: {body}");
        assert!(body.contains("demo-rg"), "{body}");
    }
    let trail = p.h.audit_trail().await;
    let refused = trail
        .iter()
        .filter(|e| e.event.method == "CONNECT" && e.event.status == 407)
        .count();
    assert_eq!(refused, 4, "every refused CONNECT is recorded");
    assert_eq!(p.h.sim.requests().len(), 2);
    p.h.shutdown().await;
}

/// The Azure CLI, unchanged (no `az cloud register`), with only
/// `HTTPS_PROXY` and `REQUESTS_CA_BUNDLE`: it signs in as an App Service
/// managed identity (the simulated `IDENTITY_ENDPOINT`, reached directly as
/// on Azure), then lists groups, shows a secret (masked) and has a VM delete
/// refused with the rule's name. `cargo xtask ci` installs it into
/// `target/ci-cache/azure-cli` (`tests/python/azure-cli.txt`).
#[tokio::test]
async fn the_azure_cli_works_unchanged_through_the_proxy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let az = root.join("target/ci-cache/azure-cli/bin/az");
    assert!(
        az.exists(),
        "{} is missing: run `cargo xtask ci` (its test-tools step installs tests/python/azure-cli.txt)",
        az.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(Options {
        extra_toml: forward_proxy_toml(dir.path(), "127.0.0.1:9".parse().unwrap(), ""),
        // What the CLI asks for ARM (`https://management.core.windows.net/`,
        // which the simulated identity endpoint issues without its slash)
        // and, after Key Vault's challenge, for vaults.
        audiences: vec![
            "https://management.core.windows.net".into(),
            "https://vault.azure.net".into(),
        ],
        policy: Some(format!(
            "{POLICY}\n[[rule]]\nname = \"no-vm-deletes\"\neffect = \"deny\"\nactions = [\"Microsoft.Compute/virtualMachines/delete\"]\nreason = \"machines are deleted by people\"\n"
        )),
        ..Options::default()
    })
    .await;
    h.issuer.register_managed_identity(
        "agent-mi-client",
        "agent-mi-object",
        "/subscriptions/s/resourceGroups/agents/providers/Microsoft.ManagedIdentity/userAssignedIdentities/agent",
    );
    let (identity_endpoint, identity_header) = h.issuer.app_service_identity();
    let config_dir = dir.path().join("azure");
    let az_run = |args: &[&str]| {
        let mut command = tokio::process::Command::new(&az);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AZURE_CONFIG_DIR", &config_dir)
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_SURVEY_MESSAGE", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env("HTTPS_PROXY", format!("http://{}", h.gateway.local_addr()))
            .env("REQUESTS_CA_BUNDLE", dir.path().join("proxy-ca.pem"))
            .env("IDENTITY_ENDPOINT", &identity_endpoint)
            .env("IDENTITY_HEADER", &identity_header);
        async move {
            let output = command.output().await.unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) = az_run(&["login", "--identity", "--output", "json"]).await;
    assert!(ok, "az login: {out}{err}");
    assert!(out.contains(SUBSCRIPTION_ID), "{out}");

    let (ok, out, err) = az_run(&["group", "list", "--query", "[].name", "--output", "json"]).await;
    assert!(ok, "az group list: {err}");
    let groups: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(groups, serde_json::json!(["demo-rg"]));

    let (ok, out, err) = az_run(&[
        "keyvault",
        "secret",
        "show",
        "--vault-name",
        VAULT,
        "--name",
        airlock_sim::SECRET_NAME,
        "--query",
        "value",
        "--output",
        "tsv",
    ])
    .await;
    assert!(ok, "az keyvault secret show: {err}");
    assert!(
        out.trim().starts_with("***MASKED:") && !out.contains(SECRET_VALUE),
        "{out}"
    );

    let (ok, out, err) = az_run(&[
        "vm",
        "delete",
        "--resource-group",
        "demo-rg",
        "--name",
        "vm1",
        "--yes",
    ])
    .await;
    assert!(!ok, "az vm delete was not refused: {out}");
    assert!(
        err.contains("AirlockPolicyDenied") && err.contains("no-vm-deletes"),
        "{err}"
    );

    // What the simulated Azure got: reads and the secret with the gateway's token, no delete.
    let received = h.sim.requests();
    assert!(received.iter().all(|r| r.method != http::Method::DELETE));
    assert!(received.iter().any(|r| r.uri.path().contains("/secrets/")));
    assert!(received.iter().all(|r| {
        !r.headers["authorization"]
            .to_str()
            .unwrap()
            .contains("agent-mi")
    }));
    // And who the gateway saw: the CLI's managed identity, on every request it recorded.
    let trail = h.audit_trail().await;
    assert!(trail.iter().any(|e| {
        e.event.method == "DELETE"
            && e.event.status == 403
            && e.event
                .principal
                .as_ref()
                .is_some_and(|p| p.id == "agent-mi-object")
    }));
    h.shutdown().await;
}

/// `forward_caller_token`: through the forward proxy a person's tool (here
/// curl with Alice's token for ARM) reaches Azure with Alice's own token,
/// after every check, so Azure applies her own Reader role: her read goes
/// through, Azure itself refuses her write. Her token for the gateway's
/// audience, sent to the gateway's own address, is refused, never forwarded.
/// A forward proxy whose people (users) reach Azure with their own token
/// (`forward_caller_token`), policy allowing reads and storage and group
/// writes; Alice holds Reader on demo-rg in the simulated Azure. Also her
/// token for Azure.
async fn forwarding_callers() -> (Proxied, String) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(Options {
        extra_toml: format!(
            "{}\n[[upstream.identities]]\nname = \"as-caller\"\nforward_caller_token = true\nserves = {{ kinds = [\"user\", \"agent\"] }}\n",
            forward_proxy_toml(dir.path(), "127.0.0.1:9".parse().unwrap(), "")
        ),
        audiences: vec!["https://management.azure.com".into()],
        policy: Some(
            "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n\n[[rule]]\nname = \"writes\"\neffect = \"allow\"\nactions = [\"Microsoft.Storage/storageAccounts/write\", \"Microsoft.Resources/subscriptions/resourceGroups/write\"]\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let alice = airlock_sim::TokenSpec::approver();
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/demo-rg");
    h.sim
        .assign_role(&alice.object_id, airlock_sim::Role::Reader, &rg);
    let token = h
        .issuer
        .mint(&alice.audience("https://management.azure.com"));
    let p = Proxied {
        h,
        ca: dir.path().join("proxy-ca.pem"),
        _dir: dir,
    };
    (p, token)
}

#[tokio::test]
async fn a_callers_own_azure_token_is_forwarded_only_where_it_was_issued_for() {
    let (p, token) = forwarding_callers().await;
    let alice = airlock_sim::TokenSpec::approver();
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/demo-rg");
    let authorization = format!("Authorization: Bearer {token}");

    let (status, body) = p
        .curl_with(
            &["-H", &authorization],
            &format!("https://management.azure.com{rg}?api-version=2021-04-01"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = p.h.sim.requests();
    assert_eq!(
        sent[0].headers["authorization"].to_str().unwrap(),
        format!("Bearer {token}"),
        "Azure got Alice's own token"
    );
    let (status, body) = p
        .curl_with(
            &[
                "-H",
                &authorization,
                "-X",
                "PUT",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#,
            ],
            &format!(
                "https://management.azure.com{rg}/providers/Microsoft.Storage/storageAccounts/alicesacct?api-version=2023-05-01"
            ),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("AuthorizationFailed"),
        "Azure's own refusal: {body}"
    );

    // Her token for the gateway, at the gateway's own address: not forwarded.
    let for_gateway = p.h.issuer.mint(&alice);
    let direct =
        p.h.client(Some(&for_gateway))
            .get(&format!("{rg}?api-version=2021-04-01"))
            .await
            .unwrap();
    let json = airlock_tests::assert_airlock_error(
        &direct,
        http::StatusCode::FORBIDDEN,
        "AirlockCallerTokenAudience",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("issued for 'api://airlock'"),
        "{json}"
    );
    assert_eq!(p.h.sim.requests().len(), 2, "nothing else reached Azure");
    p.h.shutdown().await;
}

/// The Python Azure SDK as an agent (an Entra Agent ID agent identity,
/// acting alone) with its own token for Azure and its own narrow role,
/// Reader on demo-rg, through the proxy: it reads the group, and its write
/// is refused by Azure itself, not by Airlock's policy, which allows it.
#[tokio::test]
async fn the_python_sdk_meets_the_agents_own_azure_role() {
    let (p, _) = forwarding_callers().await;
    let bot = airlock_sim::TokenSpec::agent_identity(
        "release-bot",
        "7d1c0000-0000-0000-0000-0000000000c3",
        "7d1c0000-0000-0000-0000-0000000000c2",
    );
    p.h.sim.assign_role(
        &bot.object_id,
        airlock_sim::Role::Reader,
        &format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/demo-rg"),
    );
    let token =
        p.h.issuer
            .mint(&bot.audience("https://management.azure.com"));
    let proxy = format!("http://{}", p.h.gateway.local_addr());
    let output = python_script("sdk_own_role.py", &proxy, &p.ca)
        .env("AIRLOCK_AGENT_TOKEN", &token)
        .env("AIRLOCK_SUBSCRIPTION", SUBSCRIPTION_ID)
        .env("AIRLOCK_GROUP", "demo-rg")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["group"], "demo-rg", "{seen}");
    assert_eq!(
        seen["write"],
        serde_json::json!({"status": 403, "code": "AuthorizationFailed"}),
        "{seen}"
    );
    let trail = p.h.audit_trail().await;
    let write = trail
        .iter()
        .map(|e| &e.event)
        .find(|e| e.method == "PUT")
        .expect("the write was recorded");
    assert_eq!(
        (
            write.decision.as_deref(),
            write.upstream_status,
            write.upstream_identity.as_deref()
        ),
        (Some("allow"), Some(403), Some("as-caller")),
        "policy allowed it; Azure refused it, to the agent itself"
    );
    p.h.shutdown().await;
}

/// What leaves the gateway, with the Python SDK unchanged through the proxy
/// (`tests/python/sdk_reveal.py`): a secret asked for in clear with
/// `x-airlock-reveal` comes back in clear once an approver releases it,
/// then masked; a listing the exfiltration guard holds is a 409 the SDK
/// reports, and its retry gets the answer once released.
#[tokio::test]
async fn the_python_sdk_asks_for_a_reveal_and_meets_the_exfiltration_guard() {
    let dir = tempfile::tempdir().unwrap();
    let approvers = airlock_sim::APPROVERS_GROUP;
    let agents = airlock_sim::AGENTS_GROUP;
    let policy = format!(
        "{POLICY}\n[[rule]]\nname = \"list-secrets\"\neffect = \"allow\"\ndata_actions = [\"Microsoft.KeyVault/vaults/secrets/readMetadata/action\"]\n\n[[answer]]\nname = \"secret-inventory\"\noperations = [\"Microsoft.KeyVault/vaults/secrets/readMetadata/action\"]\nmin_items = 1\napproval = {{ groups = [\"{approvers}\"], hold = \"1s\" }}\n"
    );
    let reveal = format!(
        "[[masking.reveal]]\nname = \"secrets-by-approval\"\nprincipals = {{ groups = [\"{agents}\"] }}\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\napproval = {{ groups = [\"{approvers}\"], hold = \"20s\" }}\n"
    );
    let h = Harness::start_with(Options {
        extra_toml: format!(
            "{}\n{reveal}",
            forward_proxy_toml(dir.path(), "127.0.0.1:9".parse().unwrap(), "")
        ),
        audiences: vec!["https://vault.azure.net".into()],
        policy: Some(policy),
        ..Options::default()
    })
    .await;
    let proxy = format!("http://{}", h.gateway.local_addr());
    let sdk = python_script("sdk_reveal.py", &proxy, &dir.path().join("proxy-ca.pem"))
        .env("AIRLOCK_AGENT_TOKEN", &h.agent_token)
        .env("AIRLOCK_VAULT", VAULT)
        .env("AIRLOCK_SECRET", airlock_sim::SECRET_NAME)
        .kill_on_drop(true)
        .output();
    let sdk = tokio::spawn(sdk);
    // The approver releases the reveal, then the held listing.
    for rule in ["secrets-by-approval", "secret-inventory"] {
        let id = eventually(
            &format!("a pending approval by rule {rule}"),
            Duration::from_secs(60),
            || async {
                let listed = h
                    .approver()
                    .get("/api/approvals?state=pending")
                    .await
                    .ok()?;
                listed.json()["value"]
                    .as_array()?
                    .iter()
                    .find(|a| a["rule"] == rule)
                    .and_then(|a| a["id"].as_str().map(str::to_owned))
            },
        )
        .await;
        if rule == "secret-inventory" {
            // Released only once the SDK was told it is held (its 409 is in
            // the trail), so its retry is what gets the answer.
            eventually(
                "the held listing's 409",
                Duration::from_secs(30),
                || async {
                    h.audit_trail()
                        .await
                        .iter()
                        .any(|c| c.event.error_code.as_deref() == Some("AirlockAnswerHeld"))
                        .then_some(())
                },
            )
            .await;
        }
        let approved = h
            .approver()
            .send(
                http::Method::POST,
                &format!("/api/approvals/{id}/approve"),
                &[],
                None,
            )
            .await
            .unwrap();
        assert_eq!(approved.status, 200, "{:?}", approved.body);
    }
    let output = sdk.await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["revealed"], SECRET_VALUE, "{seen}");
    assert!(
        seen["again"].as_str().unwrap().starts_with("***MASKED:"),
        "{seen}"
    );
    assert_eq!(
        seen["listed"],
        serde_json::json!([airlock_sim::SECRET_NAME]),
        "{seen}"
    );
    assert_eq!(seen["refusals"][0]["status"], 409, "{seen}");
    assert_eq!(seen["refusals"][0]["code"], "AirlockAnswerHeld", "{seen}");
    h.shutdown().await;
}
