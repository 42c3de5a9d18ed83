//! The sections about watching folio run: `[http]` (the optional listener for `/healthz` and
//! `/metrics`) and `[alarms]` (the stall alarm). Kept apart from `sections` because they say
//! nothing about mail or tickets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::raw::{RawAlarms, RawHttp};
use super::validator::Validator;
use super::Env;

/// The environment variable that overrides `http.listen` (several `folio run` instances may
/// share one configuration file; each needs its own address).
pub const HTTP_LISTEN_ENV: &str = "FOLIO_HTTP_LISTEN";

/// `alarms.stall_after` when not set.
pub const DEFAULT_STALL_AFTER: &str = "15m";

/// `[http]`: the optional HTTP listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where to listen; `None`: no listener.
    pub listen: Option<SocketAddr>,
    /// Where the address came from (`FILE: http.listen`, `FOLIO_HTTP_LISTEN`, `--http-listen`),
    /// for the error when it cannot be bound.
    pub listen_origin: String,
}

impl HttpConfig {
    /// `listen` given on the command line (`folio run --http-listen`), which wins over the
    /// environment and the file.
    pub fn with_flag(self, flag: Option<&str>) -> Result<HttpConfig, String> {
        match flag {
            None => Ok(self),
            Some(text) => Ok(HttpConfig {
                listen: Some(parse_listen(text).map_err(|e| format!("--http-listen: {e}"))?),
                listen_origin: "--http-listen".into(),
            }),
        }
    }
}

/// `[alarms]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmsConfig {
    /// Mail waiting in the watched folder with nothing processed for this long is a stall:
    /// an error in the log, `folio_stalled` and one mail to `helpdesk.admins`. `None`
    /// (`"0"`): no stall alarm.
    pub stall_after: Option<Duration>,
}

impl Default for AlarmsConfig {
    /// The documented defaults (what `[alarms]` means when it is empty).
    fn default() -> Self {
        AlarmsConfig {
            stall_after: humantime::parse_duration(DEFAULT_STALL_AFTER).ok(),
        }
    }
}

/// An address to listen on: `IP:PORT` (`127.0.0.1:9464`, `[::1]:9464`), `localhost:PORT`, or a
/// bare `PORT` (on 127.0.0.1: loopback is the default). Port 0 lets the system choose (the
/// chosen address is logged).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let loopback = |port: &str| {
        port.parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    loopback(port).map_err(|_| {
        format!(
            "expected an address like \"127.0.0.1:9464\", \"[::1]:9464\" or a port (loopback), got {text:?}"
        )
    })
}

impl Validator<'_> {
    /// `[http]`; `FOLIO_HTTP_LISTEN` overrides `listen`.
    pub(super) fn http(&mut self, h: RawHttp, env: &dyn Env) -> HttpConfig {
        let (text, origin) = match env.var(HTTP_LISTEN_ENV) {
            Some(v) => (Some(v), HTTP_LISTEN_ENV.to_string()),
            None => (
                h.listen.filter(|l| !l.trim().is_empty()),
                format!("{}: http.listen", self.path().display()),
            ),
        };
        let listen = text.and_then(|t| match parse_listen(&t) {
            Ok(a) => Some(a),
            Err(e) if origin == HTTP_LISTEN_ENV => {
                self.issue("http.listen", format!("{HTTP_LISTEN_ENV}: {e}"));
                None
            }
            Err(e) => {
                self.issue("http.listen", e);
                None
            }
        });
        HttpConfig {
            listen,
            listen_origin: origin,
        }
    }

    /// `[alarms]`: `stall_after = "0"` turns the alarm off.
    pub(super) fn alarms(&mut self, a: RawAlarms) -> AlarmsConfig {
        let text = a
            .stall_after
            .unwrap_or_else(|| DEFAULT_STALL_AFTER.to_string());
        let stall_after = match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => None,
            Ok(d) => Some(d),
            Err(_) if text.trim() == "0" => None,
            Err(e) => {
                self.issue(
                    "alarms.stall_after",
                    format!("expected a duration like \"15m\" or \"0\" (off), got {text:?} ({e})"),
                );
                AlarmsConfig::default().stall_after
            }
        };
        AlarmsConfig { stall_after }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::NoEnv;

    struct ListenEnv(&'static str);
    impl Env for ListenEnv {
        fn var(&self, name: &str) -> Option<String> {
            (name == HTTP_LISTEN_ENV).then(|| self.0.to_string())
        }
    }

    #[test]
    fn no_listen_address_means_no_listener_and_a_bare_port_means_loopback() {
        let mut v = Validator::new(Path::new("f.toml"));
        assert_eq!(v.http(RawHttp::default(), &NoEnv).listen, None);
        let h = v.http(
            RawHttp {
                listen: Some("9464".into()),
            },
            &NoEnv,
        );
        assert_eq!(h.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(h.listen_origin, "f.toml: http.listen");
        assert_eq!(
            parse_listen("localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:9464").unwrap(),
            "[::1]:9464".parse().unwrap()
        );
        assert!(v.into_issues().is_empty());
    }

    #[test]
    fn the_environment_and_the_flag_override_the_file_and_name_themselves() {
        let mut v = Validator::new(Path::new("f.toml"));
        let file = RawHttp {
            listen: Some("127.0.0.1:9464".into()),
        };
        let h = v.http(file, &ListenEnv("127.0.0.1:9465"));
        assert_eq!(h.listen, Some("127.0.0.1:9465".parse().unwrap()));
        assert_eq!(h.listen_origin, HTTP_LISTEN_ENV);
        let h = h.with_flag(Some("9466")).unwrap();
        assert_eq!(h.listen, Some("127.0.0.1:9466".parse().unwrap()));
        assert_eq!(h.listen_origin, "--http-listen");
        let e = HttpConfig::default()
            .with_flag(Some("nowhere"))
            .unwrap_err();
        assert!(e.starts_with("--http-listen: expected an address"), "{e}");
        let _ = v.http(RawHttp::default(), &ListenEnv("x:y"));
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: http.listen: FOLIO_HTTP_LISTEN: expected an address like \"127.0.0.1:9464\", \
                 \"[::1]:9464\" or a port (loopback), got \"x:y\""
            ]
        );
    }

    #[test]
    fn the_stall_alarm_is_on_by_default_and_zero_turns_it_off() {
        let mut v = Validator::new(Path::new("f.toml"));
        assert_eq!(
            v.alarms(RawAlarms::default()).stall_after,
            Some(Duration::from_secs(15 * 60))
        );
        for off in ["0", "0s"] {
            let a = v.alarms(RawAlarms {
                stall_after: Some(off.into()),
            });
            assert_eq!(a.stall_after, None, "{off}");
        }
        let a = v.alarms(RawAlarms {
            stall_after: Some("soon".into()),
        });
        assert_eq!(a, AlarmsConfig::default());
        let issues = v.into_issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].starts_with("f.toml: alarms.stall_after: expected a duration"),
            "{issues:?}"
        );
    }
}
