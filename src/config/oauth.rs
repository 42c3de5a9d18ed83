//! `[oauth2]` and the `auth` keys of `[imap]` and `[smtp]`: the token endpoint folio logs into
//! the mailbox with when the provider takes no passwords (Microsoft 365, Google).

use std::time::Duration;

use super::raw::RawOAuth2;
use super::validator::Validator;
use super::{
    is_loopback, ClientAuth, Env, MailAuth, OAuth2Config, OAuth2Flow, SaslMechanism, Secret,
};

impl Validator<'_> {
    /// `imap.auth` or `smtp.auth` (named by `key`).
    pub(super) fn mail_auth(&mut self, key: &str, value: Option<String>) -> MailAuth {
        self.choice(
            key,
            value.as_deref(),
            &[
                ("password", MailAuth::Password),
                ("oauth2", MailAuth::OAuth2),
            ],
        )
    }

    /// `[oauth2]`, validated when a login uses it; a section nobody uses is a mistake worth
    /// naming (a forgotten `auth = "oauth2"` would otherwise fall back to a password silently).
    pub(super) fn oauth2(
        &mut self,
        raw: Option<RawOAuth2>,
        imap: MailAuth,
        smtp: MailAuth,
        env: &dyn Env,
    ) -> Option<OAuth2Config> {
        let used = imap == MailAuth::OAuth2 || smtp == MailAuth::OAuth2;
        let o = match (raw, used) {
            (None, false) => return None,
            (Some(_), false) => {
                self.issue(
                    "oauth2",
                    "is set but neither imap.auth nor smtp.auth is \"oauth2\"",
                );
                return None;
            }
            (None, true) => {
                self.issue(
                    "oauth2",
                    "section is required when imap.auth or smtp.auth is \"oauth2\"",
                );
                RawOAuth2::default()
            }
            (Some(o), true) => o,
        };
        let token_url = self.required("oauth2.token_url", o.token_url);
        if !token_url.is_empty() {
            self.token_url(&token_url);
        }
        let flow = self.choice(
            "oauth2.flow",
            o.flow.as_deref(),
            &[
                ("client_credentials", OAuth2Flow::ClientCredentials),
                ("refresh_token", OAuth2Flow::RefreshToken),
            ],
        );
        let client_id = self.required("oauth2.client_id", o.client_id);
        let client_secret = self.secret(
            "oauth2.client_secret",
            o.client_secret,
            o.client_secret_file,
            "FOLIO_OAUTH2_CLIENT_SECRET",
            env,
        );
        let refresh_token = self.secret(
            "oauth2.refresh_token",
            o.refresh_token,
            o.refresh_token_file,
            "FOLIO_OAUTH2_REFRESH_TOKEN",
            env,
        );
        match flow {
            OAuth2Flow::ClientCredentials => {
                if client_secret.0.is_empty() {
                    self.issue(
                        "oauth2.client_secret",
                        "is required for flow \"client_credentials\" (or oauth2.client_secret_file, \
                         or the FOLIO_OAUTH2_CLIENT_SECRET environment variable)",
                    );
                }
                if !refresh_token.0.is_empty() {
                    self.issue(
                        "oauth2.refresh_token",
                        "is used only with flow \"refresh_token\"",
                    );
                }
            }
            OAuth2Flow::RefreshToken => {
                if refresh_token.0.is_empty() {
                    self.issue(
                        "oauth2.refresh_token",
                        "is required for flow \"refresh_token\" (or oauth2.refresh_token_file, \
                         or the FOLIO_OAUTH2_REFRESH_TOKEN environment variable)",
                    );
                }
            }
        }
        let client_auth = self.choice(
            "oauth2.client_auth",
            o.client_auth.as_deref(),
            &[("post", ClientAuth::Post), ("basic", ClientAuth::Basic)],
        );
        let mechanism = self.choice(
            "oauth2.mechanism",
            o.mechanism.as_deref(),
            &[
                ("xoauth2", SaslMechanism::Xoauth2),
                ("oauthbearer", SaslMechanism::OAuthBearer),
            ],
        );
        let timeout = self.duration("oauth2.timeout", o.timeout, "30s");
        Some(OAuth2Config {
            token_url,
            flow,
            client_id,
            client_secret: Secret(client_secret.0),
            client_auth,
            refresh_token,
            scopes: o
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            mechanism,
            ca_file: self.existing_file("oauth2.ca_file", o.ca_file),
            timeout: timeout.max(Duration::from_secs(1)),
        })
    }

    /// An `https` URL, or `http` to a loopback host only (the client secret travels in it).
    fn token_url(&mut self, url: &str) {
        let Some((scheme, rest)) = url.split_once("://") else {
            self.issue(
                "oauth2.token_url",
                format!("expected an https:// URL, got {url:?}"),
            );
            return;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        match scheme {
            "https" if !host.is_empty() => {}
            "http" if is_loopback(host) => {}
            "http" => self.issue(
                "oauth2.token_url",
                format!("http:// is allowed only for a loopback host, not {host:?}; use https://"),
            ),
            _ => self.issue(
                "oauth2.token_url",
                format!("expected an https:// URL, got {url:?}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{error_of, minimal, NoEnv};
    use super::super::Config;
    use super::*;

    fn with_oauth(extra: &str) -> String {
        minimal()
            .replace("password = \"x\"\n", "password = \"x\"\nauth = \"oauth2\"\n")
            .replace(
                "[templates]",
                &format!("[oauth2]\ntoken_url = \"https://login.example.test/token\"\nclient_id = \"folio\"\n{extra}[templates]"),
            )
    }

    #[test]
    fn client_credentials_by_default_with_xoauth2_and_smtp_keeps_its_own_auth() {
        let text = with_oauth("client_secret = \"s3\"\nscope = \"a b\"\n");
        let c = Config::parse(Path::new("f.toml"), &text, &NoEnv).unwrap();
        assert_eq!(c.imap.auth, MailAuth::OAuth2);
        assert_eq!(c.smtp.auth, MailAuth::Password);
        assert_eq!(c.smtp.username, None);
        let o = c.oauth2.unwrap();
        assert_eq!(o.flow, OAuth2Flow::ClientCredentials);
        assert_eq!(o.mechanism, SaslMechanism::Xoauth2);
        assert_eq!(o.client_auth, ClientAuth::Post);
        assert_eq!(o.scopes, vec!["a", "b"]);
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(format!("{:?}", o.client_secret), "\"***\"");
    }

    #[test]
    fn the_imap_password_is_not_required_with_oauth2_and_smtp_logs_in_as_the_mailbox() {
        let text = with_oauth(
            "flow = \"refresh_token\"\nrefresh_token = \"r1\"\nmechanism = \"oauthbearer\"\n",
        )
        .replace("password = \"x\"\n", "")
        .replace("[smtp]\n", "[smtp]\nauth = \"oauth2\"\n");
        let c = Config::parse(Path::new("f.toml"), &text, &NoEnv).unwrap();
        assert_eq!(c.smtp.auth, MailAuth::OAuth2);
        assert_eq!(c.smtp.username.as_deref(), Some("helpdesk@example.test"));
        let o = c.oauth2.unwrap();
        assert_eq!(o.refresh_token.0, "r1");
        assert_eq!(o.mechanism, SaslMechanism::OAuthBearer);
    }

    #[test]
    fn the_environment_supplies_the_secrets() {
        struct E;
        impl Env for E {
            fn var(&self, n: &str) -> Option<String> {
                match n {
                    "FOLIO_OAUTH2_CLIENT_SECRET" => Some("env-secret".into()),
                    "FOLIO_OAUTH2_REFRESH_TOKEN" => Some("env-refresh".into()),
                    _ => None,
                }
            }
        }
        let text = with_oauth("flow = \"refresh_token\"\n");
        let o = Config::parse(Path::new("f.toml"), &text, &E)
            .unwrap()
            .oauth2
            .unwrap();
        assert_eq!(o.client_secret.0, "env-secret");
        assert_eq!(o.refresh_token.0, "env-refresh");
    }

    #[test]
    fn every_problem_names_its_key() {
        let e = error_of(
            "f.toml",
            &with_oauth("flow = \"implicit\"\nmechanism = \"plain\"\n").replace(
                "https://login.example.test/token",
                "http://login.example.test/token",
            ),
        );
        assert!(
            e.contains("f.toml: oauth2.token_url: http:// is allowed only for a loopback host"),
            "{e}"
        );
        assert!(e.contains("oauth2.flow: expected \"client_credentials\" or \"refresh_token\", got \"implicit\""), "{e}");
        assert!(e.contains("oauth2.mechanism"), "{e}");
        assert!(
            e.contains("oauth2.client_secret: is required for flow \"client_credentials\""),
            "{e}"
        );
        let e = error_of("f.toml", &with_oauth("flow = \"refresh_token\"\n"));
        assert!(e.contains("oauth2.refresh_token: is required"), "{e}");
        let e = error_of(
            "f.toml",
            &minimal().replace("password = \"x\"\n", "auth = \"oauth2\"\n"),
        );
        assert!(e.contains("f.toml: oauth2: section is required"), "{e}");
        let e = error_of(
            "f.toml",
            &minimal().replace("[templates]", "[oauth2]\nclient_id = \"x\"\n[templates]"),
        );
        assert!(
            e.contains("oauth2: is set but neither imap.auth nor smtp.auth"),
            "{e}"
        );
        let e = error_of(
            "f.toml",
            &minimal().replace("[smtp]\n", "[smtp]\nauth = \"token\"\n"),
        );
        assert!(
            e.contains("smtp.auth: expected \"password\" or \"oauth2\", got \"token\""),
            "{e}"
        );
    }

    #[test]
    fn loopback_http_is_accepted_for_tests() {
        let text = with_oauth("client_secret = \"s\"\n").replace(
            "https://login.example.test/token",
            "http://127.0.0.1:8080/token",
        );
        assert!(Config::parse(Path::new("f.toml"), &text, &NoEnv).is_ok());
    }
}
