//! The token endpoint: one grant request (client credentials or refresh token) over HTTPS with
//! the `oauth2` crate on reqwest, TLS from [`crate::tls`].

use std::time::Duration;

use ::oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use ::oauth2::{
    AuthType, ClientId, ClientSecret, HttpClientError, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};

use crate::config::{ClientAuth, OAuth2Config, OAuth2Flow, Secret};

/// Why no token came back; the text names the server's `error` (and description) or the
/// transport's failure, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("oauth2.token_url {url}: {message}")]
    Setup { url: String, message: String },
    #[error("oauth2.token_url {url}: {message}")]
    Request { url: String, message: String },
}

/// The HTTP client the token requests go through.
pub type Http = reqwest::Client;

impl EndpointError {
    /// What went wrong, without the URL (for messages that name it apart).
    pub fn reason(&self) -> &str {
        match self {
            EndpointError::Setup { message, .. } | EndpointError::Request { message, .. } => {
                message
            }
        }
    }
}

/// What a successful grant returned.
pub struct Granted {
    pub access: Secret,
    pub lifetime: Option<Duration>,
    /// A new refresh token, when the server rotates them.
    pub refresh_token: Option<Secret>,
}

/// The HTTP client for `cfg.token_url`: redirects off (a token request must not be replayed
/// elsewhere), bounded by `oauth2.timeout`, TLS with the ring provider.
pub fn http_client(cfg: &OAuth2Config) -> Result<reqwest::Client, EndpointError> {
    let setup = |message: String| EndpointError::Setup {
        url: cfg.token_url.clone(),
        message,
    };
    let tls = crate::tls::client_config(cfg.ca_file.as_deref(), "oauth2.ca_file")
        .map_err(|e| setup(e.to_string()))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .build()
        .map_err(|e| setup(e.to_string()))
}

/// Asks the endpoint for an access token with the configured grant; `refresh_token` is the
/// current one (it may have rotated since start).
pub async fn request(
    cfg: &OAuth2Config,
    http: &reqwest::Client,
    refresh_token: &Secret,
) -> Result<Granted, EndpointError> {
    let err = |message: String| EndpointError::Request {
        url: cfg.token_url.clone(),
        message,
    };
    let url = TokenUrl::new(cfg.token_url.clone()).map_err(|e| err(e.to_string()))?;
    let mut client = BasicClient::new(ClientId::new(cfg.client_id.clone()))
        .set_token_uri(url)
        .set_auth_type(match cfg.client_auth {
            ClientAuth::Post => AuthType::RequestBody,
            ClientAuth::Basic => AuthType::BasicAuth,
        });
    if !cfg.client_secret.0.is_empty() {
        client = client.set_client_secret(ClientSecret::new(cfg.client_secret.0.clone()));
    }
    let scopes = cfg.scopes.iter().cloned().map(Scope::new);
    let result = match cfg.flow {
        OAuth2Flow::ClientCredentials => {
            client
                .exchange_client_credentials()
                .add_scopes(scopes)
                .request_async(http)
                .await
        }
        OAuth2Flow::RefreshToken => {
            let current = RefreshToken::new(refresh_token.0.clone());
            client
                .exchange_refresh_token(&current)
                .add_scopes(scopes)
                .request_async(http)
                .await
        }
    };
    let response: BasicTokenResponse = result.map_err(|e| err(describe(&e)))?;
    Ok(Granted {
        access: Secret(response.access_token().secret().clone()),
        lifetime: response.expires_in(),
        refresh_token: response.refresh_token().map(|r| Secret(r.secret().clone())),
    })
}

/// The failure as one line: the server's error code and description, or the cause chain.
fn describe(e: &RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let mut s = format!("the server refused: {}", r.error());
            if let Some(d) = r.error_description() {
                s.push_str(&format!(" ({})", d.chars().take(300).collect::<String>()));
            }
            s
        }
        RequestTokenError::Request(e) => {
            let mut s = format!("request failed: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                s.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            s
        }
        RequestTokenError::Parse(e, body) => {
            // The body is shown only when it cannot be a token (a proxy's error page, say).
            let body = String::from_utf8_lossy(body);
            if body.contains("access_token") {
                format!("unreadable answer at {}", e.path())
            } else {
                format!(
                    "unreadable answer ({e}): {:?}",
                    body.chars().take(200).collect::<String>()
                )
            }
        }
        RequestTokenError::Other(m) => format!("unexpected answer: {m}"),
    }
}
