//! The SASL messages that carry an access token: Google's and Microsoft's `XOAUTH2` and RFC 7628
//! `OAUTHBEARER`. Pure: the same bytes go over IMAP `AUTHENTICATE` and SMTP `AUTH`.

use crate::config::{SaslMechanism, Secret};

impl SaslMechanism {
    /// The mechanism's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Xoauth2 => "XOAUTH2",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The client's answer to the server's error challenge (a JSON status): the exchange must
    /// be finished before the server sends its final "no" (RFC 7628 3.2.3; XOAUTH2 wants an
    /// empty line).
    pub fn error_ack(self) -> &'static [u8] {
        match self {
            SaslMechanism::Xoauth2 => b"",
            SaslMechanism::OAuthBearer => b"\x01",
        }
    }
}

/// The client's first (and only) message for `mechanism`: `user` logging in with `token`
/// on `host`:`port` (OAUTHBEARER names them; XOAUTH2 does not).
pub fn initial_response(
    mechanism: SaslMechanism,
    user: &str,
    token: &Secret,
    host: &str,
    port: u16,
) -> Secret {
    Secret(match mechanism {
        SaslMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {}\x01\x01", token.0),
        SaslMechanism::OAuthBearer => format!(
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
            gs2_name(user),
            token.0
        ),
    })
}

/// RFC 5801 `saslname`: `,` and `=` escaped.
fn gs2_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The server's error challenge as text, for the log (it is JSON such as
/// `{"status":"invalid_token"}`; never holds the token).
pub fn describe_challenge(challenge: &[u8]) -> String {
    let text = String::from_utf8_lossy(challenge);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        text.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_is_user_and_bearer_token_separated_by_ctrl_a() {
        let r = initial_response(
            SaslMechanism::Xoauth2,
            "mesa@uni.test",
            &Secret("tok".into()),
            "imap.uni.test",
            993,
        );
        assert_eq!(r.0, "user=mesa@uni.test\x01auth=Bearer tok\x01\x01");
    }

    #[test]
    fn oauthbearer_has_the_gs2_header_host_and_port_rfc_7628() {
        let r = initial_response(
            SaslMechanism::OAuthBearer,
            "a,b=c@uni.test",
            &Secret("tok".into()),
            "imap.uni.test",
            143,
        );
        assert_eq!(
            r.0,
            "n,a=a=2Cb=3Dc@uni.test,\x01host=imap.uni.test\x01port=143\x01auth=Bearer tok\x01\x01"
        );
    }
}
