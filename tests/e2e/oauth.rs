//! OAuth2 logins (`imap.auth` / `smtp.auth` = "oauth2") against the real stack: Dovecot's
//! oauth2 passdb checks the tokens (HS256 JWTs, validated locally with the stack's key) for
//! `oauth-*@example.test`, and Postfix's submission port authenticates through Dovecot. The
//! token endpoint is written here: a small HTTP/1.1 server on 127.0.0.1 that issues short-lived
//! tokens, rotates refresh tokens, and can be told to refuse.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;
use crate::observe::{get, healthz, http_addr, sample, HTTP};
use crate::{inbox, sentinel};

const CLIENT_ID: &str = "folio-test";
const CLIENT_SECRET: &str = "s3cret-for-the-test";

/// One request the endpoint answered.
#[derive(Debug, Clone)]
pub struct Grant {
    /// When it was answered (seconds since the epoch).
    pub at: f64,
    pub grant_type: String,
    /// The refresh token presented (refresh grant).
    pub refresh_token: Option<String>,
    /// Whether a token was issued.
    pub ok: bool,
    /// The issued token's expiry (seconds since the epoch).
    pub expires: f64,
}

struct EndpointState {
    key: Vec<u8>,
    /// Whose mailbox the tokens are for (the JWT's `sub`).
    user: String,
    lifetime: u64,
    refuse: AtomicBool,
    /// The refresh token the endpoint accepts next (it rotates on every refresh).
    current_refresh: Mutex<String>,
    grants: Mutex<Vec<Grant>>,
}

/// The test's token endpoint.
pub struct TokenEndpoint {
    pub url: String,
    state: Arc<EndpointState>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 JWT for `sub`, as Dovecot's local validation wants it (typ, alg, sub, iat, exp).
fn jwt(key: &[u8], sub: &str, iat: u64, exp: u64) -> String {
    let header = b64url(br#"{"typ":"JWT","alg":"HS256"}"#);
    let claims = b64url(
        serde_json::json!({ "sub": sub, "iat": iat, "exp": exp })
            .to_string()
            .as_bytes(),
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    let sig = b64url(&mac.finalize().into_bytes());
    format!("{header}.{claims}.{sig}")
}

/// `application/x-www-form-urlencoded`, enough for the test's values.
fn form(body: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

impl TokenEndpoint {
    /// Listens on 127.0.0.1 (a free port) until the test's runtime ends.
    pub async fn start(key: Vec<u8>, user: &str, lifetime: u64) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
        let state = Arc::new(EndpointState {
            key,
            user: user.to_string(),
            lifetime,
            refuse: AtomicBool::new(false),
            current_refresh: Mutex::new("r0".into()),
            grants: Mutex::new(vec![]),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, s.clone()));
            }
        });
        TokenEndpoint { url, state }
    }

    /// From now on every request is refused (`invalid_grant`), or answered again.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::SeqCst);
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.state.grants.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request on `sock` (the client sends one per connection or keeps it alive; both
/// are served until it closes).
async fn serve(mut sock: TcpStream, state: Arc<EndpointState>) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        let (status, json) = answer(&head, &form(&body), &state);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        if sock.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn answer(head: &str, f: &HashMap<String, String>, state: &EndpointState) -> (String, String) {
    let refuse = |error: &str, description: &str| {
        (
            "400 Bad Request".to_string(),
            serde_json::json!({ "error": error, "error_description": description }).to_string(),
        )
    };
    let grant_type = f.get("grant_type").cloned().unwrap_or_default();
    let mut grant = Grant {
        at: now_secs(),
        grant_type: grant_type.clone(),
        refresh_token: f.get("refresh_token").cloned(),
        ok: false,
        expires: 0.0,
    };
    let result = if !head.starts_with("POST /oauth2/token ") {
        refuse("invalid_request", "not the token path")
    } else if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        refuse("invalid_client", "wrong client id or secret")
    } else if state.refuse.load(Ordering::SeqCst) {
        refuse("invalid_grant", "refused by the test")
    } else {
        let mut current = state.current_refresh.lock().unwrap();
        let rotated = match grant_type.as_str() {
            "client_credentials" => Ok(None),
            "refresh_token" if f.get("refresh_token") == Some(&*current) => {
                let n: u32 = current[1..].parse().unwrap();
                *current = format!("r{}", n + 1);
                Ok(Some(current.clone()))
            }
            "refresh_token" => Err(refuse(
                "invalid_grant",
                "not the latest refresh token (rotation)",
            )),
            _ => Err(refuse("unsupported_grant_type", &grant_type)),
        };
        match rotated {
            Err(e) => e,
            Ok(rotated) => {
                let iat = now_secs() as u64;
                let exp = iat + state.lifetime;
                grant.ok = true;
                grant.expires = exp as f64;
                let mut body = serde_json::json!({
                    "access_token": jwt(&state.key, &state.user, iat, exp),
                    "token_type": "Bearer",
                    "expires_in": state.lifetime,
                });
                if let Some(r) = rotated {
                    body["refresh_token"] = r.into();
                }
                ("200 OK".to_string(), body.to_string())
            }
        }
    };
    state.grants.lock().unwrap().push(grant);
    result
}

/// A folio for `hd` that logs into IMAP and SMTP (the submission port) with tokens from
/// `endpoint`; no password anywhere in its configuration.
fn oauth_folio(s: &Stack, hd: &str, endpoint: &TokenEndpoint, oauth2: &str, more: &str) -> Folio {
    let folio = Folio::new_on(
        s,
        hd,
        Options {
            extra: format!(
                "[oauth2]\ntoken_url = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
                 scope = \"mail\"\ntimeout = \"5s\"\n{oauth2}\n{more}",
                endpoint.url
            ),
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&folio.config).unwrap();
    let text = text
        .replacen("password = \"secret\"\n", "auth = \"oauth2\"\n", 1)
        .replacen(
            &format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\n", s.smtp_port),
            &format!(
                "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nauth = \"oauth2\"\n",
                s.submission_port
            ),
            1,
        );
    assert!(!text.contains("password"), "{text}");
    assert_eq!(text.matches("auth = \"oauth2\"").count(), 2, "{text}");
    std::fs::write(&folio.config, text).unwrap();
    folio
}

/// The stack's oauth2 key, or `None` (and a note) where the stack has no oauth2 passdb.
fn key_or_skip(s: &Stack) -> Option<Vec<u8>> {
    let key = s.oauth2_key();
    if key.is_none() {
        eprintln!(
            "SKIPPED: this mail stack has no oauth2 passdb (scripts/mailstack sets it up on \
             Dovecot 2.3 only)"
        );
    }
    key
}

/// A request becomes a ticket and its confirmation arrives, with folio logged in by tokens.
async fn ticket_round_trip(folio: &Folio, requester: &str) {
    let id = ask(
        requester,
        &folio.hd,
        "Sin acceso a la VPN",
        "No conecta desde casa.",
    )
    .await;
    let mails = inbox(requester, 1).await;
    assert_eq!(mails[0].in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(folio.tickets().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_refresh_token_flow_refreshes_before_expiry_and_reports_a_failing_refresh() {
    let s = stack();
    let Some(key) = key_or_skip(s) else { return };
    let hd = unique("oauth-hd");
    let alice = unique("alice");
    let admin = unique("admin");
    // Six-second tokens: refreshed at 4.5 s, so the test sees several refreshes.
    let endpoint = TokenEndpoint::start(key, &hd, 6).await;
    let mut folio = oauth_folio(
        s,
        &hd,
        &endpoint,
        "flow = \"refresh_token\"\nrefresh_token = \"r0\"\nmechanism = \"xoauth2\"",
        // No weekly summary for the admin: only the OAuth2 notices reach their inbox.
        &format!(
            "[helpdesk]\nadmins = [\"{admin}\"]\n\n[schedule]\n\
             technician_digest = \"0 0 0 1 1 * 2099\"\nweekly_summary = \"0 0 0 1 1 * 2099\"\n\n{HTTP}"
        ),
    );
    folio.start(&[]).await;
    ticket_round_trip(&folio, &alice).await;

    // Refreshed before expiry, each time with the refresh token the last answer rotated to
    // (the endpoint takes only the latest).
    let grants = wait_for("three tokens", Duration::from_secs(30), || async {
        let g: Vec<Grant> = endpoint.grants().into_iter().filter(|g| g.ok).collect();
        (g.len() >= 3).then_some(g)
    })
    .await;
    for pair in grants.windows(2) {
        assert_eq!(pair[1].grant_type, "refresh_token");
        assert!(
            pair[1].at < pair[0].expires,
            "refreshed after expiry: {pair:?}"
        );
        assert!(pair[1].at >= pair[0].expires - 6.0 * 0.25 - 1.0, "{pair:?}");
    }
    assert!(
        endpoint.grants().iter().all(|g| g.ok),
        "{:?}",
        endpoint.grants()
    );
    assert_eq!(grants[0].refresh_token.as_deref(), Some("r0"));
    assert_eq!(grants[1].refresh_token.as_deref(), Some("r1"));
    assert!(!folio.log_text().contains(CLIENT_SECRET));

    // The endpoint refuses: each failure is logged with the URL and the server's error, the
    // episode is announced once however many retries fail, and it ends when a refresh works.
    endpoint.refuse(true);
    wait_for("two refused refreshes", Duration::from_secs(30), || async {
        (endpoint.grants().iter().filter(|g| !g.ok).count() >= 2).then_some(())
    })
    .await;
    wait_for(
        "the failures in the log",
        Duration::from_secs(10),
        || async {
            let log = folio.log_text();
            (log.matches("OAuth2 token refresh failed").count() >= 2).then_some(())
        },
    )
    .await;
    let log = folio.log_text();
    let failed = log
        .lines()
        .find(|l| l.contains("OAuth2 token refresh failed"))
        .unwrap();
    assert!(failed.contains(&endpoint.url), "{failed}");
    assert!(
        failed.contains("invalid_grant") && failed.contains("refused by the test"),
        "{failed}"
    );
    assert!(failed.contains("ERROR"), "{failed}");
    assert_eq!(
        log.matches("OAuth2 failure episode started").count(),
        1,
        "{log}"
    );
    // Health and metrics show the failing endpoint (still 200 while the last token works).
    let addr = http_addr(&folio).await;
    let (_, health) = healthz(&addr).await;
    assert!(health["oauth2"]["failing_since"].is_string(), "{health}");
    let (_, metrics) = get(&addr, "/metrics").await;
    assert_eq!(
        sample(&metrics, "folio_oauth2_failing"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "folio_oauth2_refreshes_total{result=\"error\"}").unwrap_or(0.0) >= 2.0,
        "{metrics}"
    );
    endpoint.refuse(false);
    wait_for(
        "the recovery in the log",
        Duration::from_secs(30),
        || async {
            folio
                .log_text()
                .contains("OAuth2 token endpoint works again")
                .then_some(())
        },
    )
    .await;
    // Mail still flows on the new tokens, and the admin got one notice for the episode
    // (it leaves over SMTP once a token works: a pooled connection, the old token, or the
    // new one).
    sentinel(&folio, &alice, 1).await;
    let notices = inbox(&admin, 1).await;
    assert_eq!(
        notices[0].subject,
        "[Mesa de Ayuda] Falla el acceso al buzón: el token OAuth2 fue rechazado"
    );
    assert!(
        notices[0].body_text.contains("refused by the test"),
        "{}",
        notices[0].body_text
    );
    assert!(
        notices[0].body_text.contains(&endpoint.url),
        "{}",
        notices[0].body_text
    );

    // A second episode: a second notice, and no more.
    let refused_before = endpoint.grants().iter().filter(|g| !g.ok).count();
    endpoint.refuse(true);
    wait_for(
        "another refused refresh",
        Duration::from_secs(30),
        || async {
            (endpoint.grants().iter().filter(|g| !g.ok).count() >= refused_before + 2).then_some(())
        },
    )
    .await;
    endpoint.refuse(false);
    inbox(&admin, 2).await;
    // Time for a wrong third notice to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fetch_all(&admin, "INBOX").await.len(), 2);
    assert_eq!(
        folio
            .log_text()
            .matches("OAuth2 failure episode started")
            .count(),
        2
    );
    assert!(!folio.log_text().contains("auth=Bearer"));
    folio.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_client_credentials_flow_logs_into_imap_and_smtp() {
    let s = stack();
    let Some(key) = key_or_skip(s) else { return };
    let hd = unique("oauth-hd");
    let bob = unique("bob");
    let endpoint = TokenEndpoint::start(key, &hd, 3600).await;
    let mut folio = oauth_folio(
        s,
        &hd,
        &endpoint,
        "flow = \"client_credentials\"\nmechanism = \"oauthbearer\"",
        "",
    );
    folio.start(&[]).await;
    ticket_round_trip(&folio, &bob).await;
    let grants = endpoint.grants();
    // One token serves both logins (and is not refreshed within its hour).
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].grant_type, "client_credentials");
    let dovecot = std::fs::read_to_string(s.dir.join("log/dovecot.log")).unwrap();
    assert!(
        dovecot
            .lines()
            .any(|l| l.contains(&format!("user=<{hd}>, method=OAUTHBEARER"))),
        "Dovecot logged no OAUTHBEARER login for {hd}"
    );
    folio.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_fails_the_login_with_the_servers_reason() {
    let s = stack();
    let Some(key) = key_or_skip(s) else { return };
    let hd = unique("oauth-hd");
    // Tokens for someone else: Dovecot refuses them (the JWT's sub is not the login).
    let endpoint = TokenEndpoint::start(key, "oauth-someone-else@example.test", 3600).await;
    let mut folio = oauth_folio(s, &hd, &endpoint, "mechanism = \"xoauth2\"", "");
    let started = tokio::time::timeout(Duration::from_secs(8), folio.start(&[])).await;
    assert!(
        started.is_err(),
        "folio logged in with another user's token"
    );
    let log = folio.log_text();
    assert!(log.contains("XOAUTH2"), "{log}");
    assert!(
        log.contains("invalid_token") || log.contains("401"),
        "{log}"
    );
    folio.kill9();
}

/// The token source in-process, against the test endpoint: what health checks and metrics
/// read, and the episode hook called once per failure episode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_source_status_counts_and_announces_each_failure_episode_once() {
    use folio::config::{ClientAuth, OAuth2Config, OAuth2Flow, SaslMechanism, Secret};
    let endpoint = TokenEndpoint::start(b"k".to_vec(), "oauth-x@example.test", 4).await;
    let cfg = OAuth2Config {
        token_url: endpoint.url.clone(),
        flow: OAuth2Flow::RefreshToken,
        client_id: CLIENT_ID.into(),
        client_secret: Secret(CLIENT_SECRET.into()),
        client_auth: ClientAuth::Post,
        refresh_token: Secret("r0".into()),
        scopes: vec![],
        mechanism: SaslMechanism::Xoauth2,
        ca_file: None,
        timeout: Duration::from_secs(5),
    };
    let source = Arc::new(
        folio::oauth::TokenSource::new(&cfg, Arc::new(folio::clock::SystemClock)).unwrap(),
    );
    let episodes = Arc::new(Mutex::new(Vec::new()));
    let seen = episodes.clone();
    source.on_episode(Box::new(move |e| seen.lock().unwrap().push(e.clone())));
    let (trigger, shutdown) = folio::shutdown::channel();
    let task = tokio::spawn(source.clone().run(shutdown));

    let first = source.token().await.unwrap();
    assert_eq!(source.status().successes, 1);
    endpoint.refuse(true);
    // The refresh at 3 s fails; the current token is still handed out until shortly before
    // its expiry, and the status says why.
    let status = wait_for("a failed refresh", Duration::from_secs(10), || async {
        let st = source.status();
        (st.failures >= 2).then_some(st)
    })
    .await;
    assert!(status.failing_since.is_some());
    let (_, error) = status.last_error.clone().unwrap();
    assert!(error.contains("invalid_grant"), "{error}");
    assert_eq!(status.token_url, endpoint.url);
    if let Ok(t) = source.token().await {
        assert_eq!(t.0, first.0, "only the old token can be handed out");
    }
    assert_eq!(episodes.lock().unwrap().len(), 1);
    endpoint.refuse(false);
    wait_for("recovery", Duration::from_secs(10), || async {
        source.status().failing_since.is_none().then_some(())
    })
    .await;
    assert!(source
        .status()
        .healthy(folio::clock::Clock::now(&folio::clock::SystemClock)));
    endpoint.refuse(true);
    wait_for("a second episode", Duration::from_secs(10), || async {
        (episodes.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    trigger.trigger();
    task.await.unwrap();
    let e = &episodes.lock().unwrap()[1];
    assert_eq!(e.token_url, endpoint.url);
    assert!(e.error.contains("refused by the test"), "{}", e.error);
}
